#!/usr/bin/env bash
# Peak resident memory (getrusage ru_maxrss, which `kvtie generate --json` reports as peak_rss_bytes)
# of `kvtie generate` at long context, per attention variant and cache format, beside the theory.
#
# Each variant is a fresh `kvtie init` checkpoint of a cache-heavy config (default: 6 layers,
# d_model 512, 8 heads, d_ff 2048, vocab 8192, max_seq_len 8192) with the data/lm tokenizer beside
# it. A batch of prompts (~256 tokens each, from data/lm/val.txt) is decoded greedily until every
# sequence reaches the full context, so every cache page has been written when ru_maxrss is read.
#
# The theory, from `kvtie profile --json` (parameters, KV-cache bytes) and the forward's buffers:
#   load  = checkpoint file (read whole) + parameters (an inference model has no gradients)
#   run   = parameters + KV cache + the prefill forward's activations at the longest
#           prompt (per layer: LayerNorms, QKV, the attention's H·T log-sum-exps, MLP; the
#           attention's score tile of each thread; and logits)
#   peak  = process baseline + max(load, run)
# The process baseline (binary, libraries, tokenizer, OpenMP/OpenBLAS) is measured: a 1-layer
# d_model-64 model with the same tokenizer, minus its own theory.
#
# Usage: bench/generate_memory.sh [--kvtie BIN] [--context N] [--batch N] [--dtypes "fp32 int8"]
#                                 [--variants "QKV Q-K=V ..."] [--threads N] [--json]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kvtie=${KVTIE_BIN:-$root/build/release/kvtie}
context=8192 batch=4 threads=1 json=0 prompt_bytes=1100
dtypes="fp32 int8"
variants="QKV Q-K=V Q=K=V MQA Q-MQA"
tokenizer=$root/data/lm/tokenizer text=$root/data/lm/val.txt
while [[ $# -gt 0 ]]; do
  case $1 in
    --kvtie) kvtie=$2; shift 2 ;;
    --context) context=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --dtypes) dtypes=$2; shift 2 ;;
    --variants) variants=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --json) json=1; shift ;;
    *) echo "usage: $0 [--kvtie BIN] [--context N] [--batch N] [--dtypes LIST] [--variants LIST] [--threads N] [--json]" >&2
       exit 2 ;;
  esac
done
[[ -x $kvtie ]] || { echo "$kvtie: not built (cmake --build build/release --target kvtie_cli)" >&2; exit 1; }
[[ -f $tokenizer/vocab.json && -f $text ]] || { echo "needs data/lm (scripts/setup prepares it)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=passive

# The prompts: consecutive ~prompt_bytes pieces of the validation text, one per line.
/usr/bin/python3 - "$text" "$batch" "$prompt_bytes" >"$work/prompts.txt" <<'EOF'
import sys
text = open(sys.argv[1]).read().replace("\n", " ")
n, size = int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    print(text[i * size:(i + 1) * size].strip())
EOF

model_json() {  # model_json SHARE KV_HEADS [N_LAYER D_MODEL N_HEAD D_FF MAX_SEQ]
  local layers=${3:-6} d=${4:-512} heads=${5:-8} ff=${6:-2048} seq=${7:-$context}
  printf '{"model": {"n_layer": %s, "n_head": %s, "n_kv_head": %s, "d_model": %s, "d_ff": %s, "vocab_size": 8192,
 "max_seq_len": %s, "share": "%s", "causal": true}}\n' "$layers" "$heads" "$2" "$d" "$ff" "$seq" "$1"
}

run_model() {  # run_model NAME CONFIG_JSON DTYPE GENERATE_ARGS...: one line of results.jsonl
  local name=$1 cfg=$2 dt=$3
  shift 3
  local dir=$work/$name
  if [[ ! -f $dir/model.safetensors ]]; then
    mkdir -p "$dir"
    cp "$tokenizer"/vocab.json "$tokenizer"/merges.txt "$dir"/
    echo "$cfg" >"$dir/config.json"
    "$kvtie" init --config "$dir/config.json" --out "$dir/model.safetensors" --json >/dev/null
    "$kvtie" profile --config "$dir/config.json" --variants config --dtype "$dt" --json >"$dir/profile.json"
  fi
  "$kvtie" generate --model "$dir/model.safetensors" --temperature 0 --kv-dtype "$dt" --json "$@" >"$dir/gen-$dt.json"
  /usr/bin/python3 - "$name" "$dt" "$dir" >>"$work/results.jsonl" <<'EOF'
import json, os, sys
name, dt, d = sys.argv[1:]
prof = json.load(open(f"{d}/profile.json"))["models"][0]
gen = json.load(open(f"{d}/gen-{dt}.json"))
per_token = prof["variants"][0]["kv_cache"]["bytes_per_token"][dt]
print(json.dumps({"name": name, "dtype": dt, "config": prof["config"], "params": prof["variants"][0]["params"]["total"],
                  "profile_cache_bytes_per_token": per_token,
                  "file_bytes": os.path.getsize(f"{d}/model.safetensors"), "cache_bytes": gen["cache_bytes"],
                  "peak_rss_bytes": gen["peak_rss_bytes"], "decode_tokens": gen["decode_tokens"],
                  "decode_s": gen["decode_s"],
                  "prompt_tokens": max(g["prompt_tokens"] for g in gen["generations"]),
                  "batch": len(gen["generations"])}))
EOF
}

# The process baseline: a tiny model, same tokenizer, a few tokens.
run_model baseline "$(model_json none 1 1 64 1 64 64)" fp32 --prompt "The" --max-new 4
# The prompt length decides --max-new: every sequence ends at the full context.
run_model probe "$(model_json none 1 1 64 1 64 "$context")" fp32 --batch-file "$work/prompts.txt" --max-new 1
longest=$(tail -1 "$work/results.jsonl" | jq .prompt_tokens)
max_new=$((context - longest))
declare -A share=([QKV]=none [Q-K=V]=kv [Q=K=V]=qkv [MQA]=none [Q-MQA]=kv)
declare -A kv=([QKV]=8 [Q-K=V]=8 [Q=K=V]=8 [MQA]=1 [Q-MQA]=1)
for v in $variants; do
  for dt in $dtypes; do
    [[ $json == 1 ]] || echo "running $v $dt: $batch × $max_new new tokens after prompts of ≤ $longest tokens" >&2
    run_model "$v" "$(model_json "${share[$v]}" "${kv[$v]}")" "$dt" --batch-file "$work/prompts.txt" --max-new "$max_new"
  done
done

/usr/bin/python3 - "$work/results.jsonl" "$json" "$context" "$threads" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
as_json, context, threads = sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])
MiB = 1 << 20

def row_block(T):
    """Query rows per attention score tile of a causal model (AttentionShape::row_block)."""
    rows = min(max(16, (T + 7) // 8), max(16, 65536 // max(T, 1)))
    blocks = (T + rows - 1) // rows
    return (T + blocks - 1) // blocks

def act_bytes(c, T):
    """The forward's buffers that a prefill of T tokens writes, in bytes (prompts run one at a time)."""
    d, L, H, ff, V = c["d_model"], c["n_layer"], c["n_head"], c["d_ff"], c["vocab_size"]
    q, kv = H * c["head_dim"], c["n_kv_head"] * c["head_dim"]
    P = {"none": q + 2 * kv, "kv": q + kv, "qk": q + kv, "qkv": q}[c["share"]]
    per_layer = T * (d + 2 + P + q + d + d + 2 + 2 * ff + d) + H * T
    floats = 2 * T + T * d + L * per_layer + T * (d + 2) + T * V + 2 * T + threads * row_block(T) * T
    return 4 * floats

def theory(r):
    params = 4 * r["params"]
    load = r["file_bytes"] + params
    run = params + r["cache_bytes"] + act_bytes(r["config"], r["prompt_tokens"])
    return params, load, run

for r in rows:  # the cache generate allocated is the profiler's figure at the full context
    assert r["cache_bytes"] == r["profile_cache_bytes_per_token"] * r["batch"] * min(context, r["config"]["max_seq_len"]) \
        or r["name"] in ("baseline", "probe"), r
base = next(r for r in rows if r["name"] == "baseline")
_, bl, br = theory(base)
baseline = base["peak_rss_bytes"] - max(bl, br)
out = []
for r in rows:
    if r["name"] in ("baseline", "probe"):
        continue
    params, load, run = theory(r)
    t = baseline + max(load, run)
    out.append({"variant": r["name"], "dtype": r["dtype"], "batch": r["batch"], "context": context,
                "weights_bytes": params, "cache_bytes": r["cache_bytes"],
                "activations_bytes": act_bytes(r["config"], r["prompt_tokens"]),
                "load_bytes": load, "run_bytes": run, "baseline_bytes": baseline, "theory_bytes": t,
                "peak_rss_bytes": r["peak_rss_bytes"], "error": r["peak_rss_bytes"] / t - 1,
                "decode_tokens_per_s": r["decode_tokens"] / r["decode_s"]})
if as_json:
    for o in out:
        print(json.dumps(o))
    sys.exit(0)
print(f"peak resident memory of kvtie generate: batch {out[0]['batch']}, context {context}, "
      f"process baseline {baseline / MiB:.1f} MiB (measured)")
print(f"{'variant':<8} {'dtype':<5} {'weights':>8} {'cache':>8} {'acts':>7} {'load':>8} {'run':>8} "
      f"{'theory':>8} {'measured':>9} {'error':>6}")
for o in out:
    f = lambda k: o[k] / MiB
    print(f"{o['variant']:<8} {o['dtype']:<5} {f('weights_bytes'):>8.1f} {f('cache_bytes'):>8.1f} "
          f"{f('activations_bytes'):>7.1f} {f('load_bytes'):>8.1f} {f('run_bytes'):>8.1f} {f('theory_bytes'):>8.1f} "
          f"{f('peak_rss_bytes'):>9.1f} {100 * o['error']:>+5.1f}%")
print("MiB. theory = baseline + max(load, run); load = checkpoint file + weights; "
      "run = weights + cache + prefill activations")
EOF
