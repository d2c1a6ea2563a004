#!/usr/bin/env bash
# kvtie generate and eval --kv-dtype end to end on a small checkpoint with its tokenizer beside it:
# greedy text is the same with and without the cache, batches work, and bad input is a clear error.
# Usage: generate_test.sh KVTIE_BINARY REPO_ROOT
set -u
kvtie=$1
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fails_with() {  # fails_with NAME PATTERN COMMAND...: exit 1 and a one-line error matching PATTERN
  local name=$1 pattern=$2
  shift 2
  "$@" >out.txt 2>err.txt
  local rc=$?
  if [[ $rc -eq 1 && $(wc -l <err.txt) -eq 1 ]] && grep -q -- "$pattern" err.txt; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $name (exit $rc): $(cat err.txt)"
  fi
}

# A corpus, a tokenizer trained on it, a model of that vocabulary trained briefly, tokenizer beside.
for i in $(seq 1 40); do echo "the cat sat on the mat and the dog sat on the log number $i."; done >corpus.txt
"$kvtie" tokenizer train --corpus corpus.txt --vocab-size 300 --out run --json >/dev/null
vocab=$(jq length run/vocab.json)
"$kvtie" tokenize --tokenizer run --in corpus.txt --out tokens.npy >/dev/null
cat >run.json <<JSON
{"model": {"n_layer": 2, "n_head": 4, "n_kv_head": 2, "d_model": 32, "vocab_size": $vocab, "max_seq_len": 64,
           "share": "kv"},
 "train": {"task": "lm", "train_tokens": "tokens.npy", "steps": 40, "batch_size": 4, "seq_len": 32, "lr": 1e-2,
           "tokenizer": "run", "out_dir": "run"}}
JSON
"$kvtie" train --config run.json --json >/dev/null || echo "FAIL: training the test model"
model=run/model.safetensors

"$kvtie" generate --model $model --prompt "the cat" --max-new 12 --temperature 0 --json >cached.json
"$kvtie" generate --model $model --prompt "the cat" --max-new 12 --temperature 0 --no-cache --json >full.json
check "greedy text is identical with and without the cache" \
  test "$(jq -r '.generations[0].text' cached.json)" == "$(jq -r '.generations[0].text' full.json)"
check "12 new tokens" test "$(jq '.generations[0].new_tokens' cached.json)" -eq 12
check "cache bytes are reported" test "$(jq .cache_bytes cached.json)" -gt 0
# The start line's figures in --json: 2 layers × 2 kv heads × positions × 8 × fp32, K=V once; QKV
# would keep K and V at all 4 heads: 4× the bytes.
check "--json states what the cache holds" test "$(jq -r '.kv_cache | "\(.layers) \(.kv_heads) \(.head_dim) \(.dtype) \(.v_is_k) \(.sequences)"' cached.json)" == "2 2 8 fp32 true 1"
check "--json: bytes = layers × kv heads × positions × head_dim × 4" \
  test "$(jq '.kv_cache.bytes == 2 * 2 * .kv_cache.positions * 8 * 4 and .kv_cache.bytes == .cache_bytes' cached.json)" == true
check "--json: what QKV would need" test "$(jq '.kv_cache.qkv_bytes == 4 * .kv_cache.bytes' cached.json)" == true
check "--json: the start line" bash -c "jq -r .kv_cache.line cached.json | grep -q 'K=V shared.*QKV would need'"
for dt in bf16 int8 int4; do
  check "generate with a $dt cache" bash -c "'$kvtie' generate --model $model --prompt 'the dog' --max-new 5 --kv-dtype $dt --json >/dev/null"
done
"$kvtie" generate --model $model --prompt "the cat" --max-new 8 --seed 3 >stream.txt 2>stderr.txt
check "streams the prompt and its continuation" grep -q "^the cat" stream.txt
check "states what the cache holds" grep -q "kv cache: 2 layers × 2 kv heads.*K=V shared.*QKV would need" stderr.txt
printf 'the cat\nthe dog sat\non the\n' >prompts.txt
"$kvtie" generate --model $model --batch-file prompts.txt --max-new 6 --temperature 0 --json >batch.json
check "a batch of 3 prompts" test "$(jq '.generations | length' batch.json)" -eq 3
"$kvtie" generate --model $model --prompt "the dog sat" --max-new 6 --temperature 0 --json >single.json
check "batched greedy text equals the single-prompt text" \
  test "$(jq -r '.generations[1].text' batch.json)" == "$(jq -r '.generations[0].text' single.json)"
"$kvtie" generate --model $model --prompt "the cat" --max-new 30 --temperature 0 --stop "mat" --json >stop.json
check "stops before the stop string" bash -c "! jq -r '.generations[0].text' stop.json | grep -q mat"

check "peak resident memory is reported" test "$(jq .peak_rss_bytes cached.json)" -gt 1000000

# Past the context (64): an error without --sliding-window; with it the window slides, and the greedy
# text is the same with and without the cache (both slide at the same tokens).
fails_with "prompt + --max-new beyond the context" "sliding-window" "$kvtie" generate --model $model --prompt "the cat" --max-new 100
slide=(generate --model $model --prompt "the cat" --max-new 100 --temperature 0 --sliding-window --window-keep 24 --json)
"$kvtie" "${slide[@]}" >slide.json
"$kvtie" "${slide[@]}" --no-cache >slide_full.json
check "100 new tokens through a context of 64" test "$(jq '.generations[0].new_tokens' slide.json)" -eq 100
check "the window slid" test "$(jq .window_slides slide.json)" -ge 1
check "sliding window: greedy text is identical with and without the cache" \
  test "$(jq -r '.generations[0].text' slide.json)" == "$(jq -r '.generations[0].text' slide_full.json)"
check "sliding window: the no-cache path slides as often" \
  test "$(jq .window_slides slide_full.json)" -eq "$(jq .window_slides slide.json)"
fails_with "--window-keep not below the context" "window-keep" "$kvtie" generate --model $model --prompt "the" --max-new 80 --sliding-window --window-keep 64

"$kvtie" eval --model $model --tokens tokens.npy --json >plain.json
"$kvtie" eval --model $model --tokens tokens.npy --kv-dtype fp32 --json >viacache.json
check "eval through the fp32 cache equals the full forward" \
  /usr/bin/python3 -c "import json,sys; a=json.load(open('plain.json')); b=json.load(open('viacache.json')); sys.exit(abs(a['loss']-b['loss'])>1e-4*a['loss'] or a['tokens']!=b['tokens'])"

# A cache budget fixes the capacity: one position of this model is 2 × 2 × 8 × 4 = 128 bytes at
# fp32, so 2 KiB hold 16. Past them: an error, or with --sliding-window the window slides.
"$kvtie" generate --model $model --prompt "the cat" --max-new 10 --temperature 0 --kv-budget 2KiB --json >budget.json
check "--kv-budget: a request under the budget gets the positions it needs, no more" \
  test "$(jq '.kv_cache.positions == .generations[0].prompt_tokens + 10 and .kv_cache.bytes <= 2048' budget.json)" == true
fails_with "--kv-budget too small for the request" "kv-budget 2.0 KiB holds 16 positions" \
  "$kvtie" generate --model $model --prompt "the cat" --max-new 30 --kv-budget 2KiB
"$kvtie" generate --model $model --prompt "the cat" --max-new 30 --temperature 0 --kv-budget 2KiB --sliding-window --json >budget_slide.json
check "--kv-budget with --sliding-window: 16 positions, the window slides" \
  test "$(jq '.kv_cache.positions == 16 and .window_slides >= 1 and .generations[0].new_tokens == 30' budget_slide.json)" == true
fails_with "--kv-budget below 2 positions" "at least 2" "$kvtie" generate --model $model --prompt "the" --kv-budget 200b
check "--kv-budget not a size is refused, naming the option" \
  bash -c "'$kvtie' generate --model $model --prompt the --kv-budget lots 2>&1 | grep -q '^--kv-budget: lots' && [[ \${PIPESTATUS[0]} -ne 0 ]]"

fails_with "empty prompt" "empty" "$kvtie" generate --model $model --prompt ""
long=$(for i in $(seq 1 80); do printf 'the cat '; done)
fails_with "prompt longer than the context" "context" "$kvtie" generate --model $model --prompt "$long"
check "nothing is echoed before the error" test ! -s out.txt
fails_with "unknown stop token" "unknown stop token" "$kvtie" generate --model $model --prompt "the" --stop "<|im_end|>"
mkdir -p bare && cp $model bare/
fails_with "checkpoint without tokenizer" "no tokenizer beside" "$kvtie" generate --model bare/model.safetensors --prompt "the"
fails_with "bad --top-p" "top-p" "$kvtie" generate --model $model --prompt "the" --top-p 0
fails_with "empty batch file" "no prompts" "$kvtie" generate --model $model --batch-file /dev/null
"$kvtie" eval --model $model --tokens tokens.npy --per-doc --kv-dtype int8 >out.txt 2>err.txt
rc=$?
check "eval: --per-doc with --kv-dtype is refused before evaluating" \
  bash -c "[[ $rc -ne 0 ]] && grep -q 'excludes' err.txt && ! grep -q loss out.txt"

finish
