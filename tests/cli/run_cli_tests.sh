#!/usr/bin/env bash
# End-to-end tests of the kvtie command line.
#
#   bash tests/cli/run_cli_tests.sh PATH/TO/kvtie REPO_ROOT
#
# Runs the real binary in a temporary directory. Good input must work; bad input must exit with
# status 1 (not a crash: never >= 128) and print exactly one line on stderr, starting with
# "kvtie: error: ", that names the file or field at fault. The last line of the output is
# "N passed, M failed"; the exit status is non-zero when anything failed.
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 KVTIE_BINARY REPO_ROOT" >&2
  exit 2
fi
KVTIE=$(realpath "$1")
ROOT=$(realpath "$2")
TINY="$ROOT/configs/tiny.json"
if [ ! -x "$KVTIE" ] || [ ! -f "$TINY" ]; then
  echo "run_cli_tests.sh: no executable $KVTIE or no $TINY" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
PY=python3
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvtie_cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS  $1"; }
fail() {
  failed=$((failed + 1))
  echo "FAIL  $1"
  shift
  local line
  for line in "$@"; do echo "      $line"; done
}

# run ARGS...: runs kvtie, leaving stdout in out.txt, stderr in err.txt and the status in $rc.
rc=0
run() {
  "$KVTIE" "$@" >out.txt 2>err.txt
  rc=$?
}

# expect_ok NAME ARGS...: exit status 0 and nothing on stderr.
expect_ok() {
  local name=$1
  shift
  run "$@"
  if [ "$rc" -ne 0 ]; then
    fail "$name" "exit status $rc: kvtie $*" "stderr: $(head -c 400 err.txt)"
  elif [ -s err.txt ]; then
    fail "$name" "unexpected stderr: $(head -c 400 err.txt)"
  else
    pass "$name"
  fi
}

# expect_error NAME NEEDLE... -- ARGS...: status 1, stdout empty, stderr exactly one line that starts
# with "kvtie: error: " and contains every NEEDLE (fixed strings).
expect_error() {
  local name=$1
  shift
  local needles=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    needles+=("$1")
    shift
  done
  shift  # the --
  run "$@"
  local problems=()
  if [ "$rc" -ge 128 ]; then
    problems+=("CRASH: exit status $rc (signal $((rc - 128)))")
  elif [ "$rc" -ne 1 ]; then
    problems+=("exit status $rc, expected 1")
  fi
  local lines
  lines=$(wc -l <err.txt)
  if [ "$lines" -ne 1 ] || [ "$(tail -c 1 err.txt | od -An -c | tr -d ' ')" != '\n' ]; then
    problems+=("stderr is not exactly one line ($lines newlines)")
  fi
  if ! head -n 1 err.txt | grep -q '^kvtie: error: '; then
    problems+=("stderr does not start with 'kvtie: error: '")
  fi
  local n
  for n in "${needles[@]}"; do
    grep -qF -- "$n" err.txt || problems+=("stderr does not mention '$n'")
  done
  if [ -s out.txt ]; then problems+=("unexpected stdout: $(head -c 200 out.txt)"); fi
  if [ ${#problems[@]} -eq 0 ]; then
    pass "$name"
  else
    fail "$name" "kvtie $*" "${problems[@]}" "stderr: $(head -c 400 err.txt)"
  fi
}

# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name" "check failed: $*"; fi
}

# json_get FILE EXPR: prints the Python expression EXPR evaluated with j = the JSON in FILE.
json_get() {
  "$PY" -c 'import json, math, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null
}

# --------------------------------------------------------------------------------------------
# Fixtures: token files (.npy written by hand, so that numpy is not needed) and configs.

"$PY" - <<'EOF' || { echo "fixture generation failed"; echo "0 passed, 1 failed"; exit 1; }
import random, struct

def npy(name, descr, shape, data=b"", version=1):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    prefix = 10 if version == 1 else 12
    header += " " * ((64 - (prefix + len(header) + 1) % 64) % 64) + "\n"
    with open(name, "wb") as f:
        f.write(b"\x93NUMPY" + bytes([version, 0]))
        f.write(struct.pack("<H" if version == 1 else "<I", len(header)))
        f.write(header.encode("latin1") + data)

def tokens(name, values, dtype="<u2"):
    fmt = {"<u2": "H", "<i4": "i"}[dtype]
    npy(name, dtype, "(%d,)" % len(values), struct.pack("<%d%s" % (len(values), fmt), *values))

rng = random.Random(1)
tokens("t70.npy", [(7 * i) % 32 for i in range(70)])
tokens("t70_i4.npy", [(7 * i) % 32 for i in range(70)], "<i4")
tokens("t65.npy", [(5 * i + 1) % 32 for i in range(65)], "<i4")
tokens("t32.npy", [i % 32 for i in range(32)])
tokens("t2.npy", [3, 4])
tokens("r4096.npy", [rng.randrange(32) for _ in range(4096)], "<i4")
npy("t70_v2.npy", "<u2", "(70,)", struct.pack("<70H", *[(7 * i) % 32 for i in range(70)]), version=2)
# Bad token files.
tokens("oov.npy", [1, 2, 40, 3], "<i4")
tokens("negative.npy", [1, 2, -5, 3], "<i4")
tokens("empty.npy", [], "<i4")
tokens("one.npy", [7])
npy("float64.npy", "<f8", "(70,)", struct.pack("<70d", *range(70)))
npy("int64.npy", "<i8", "(4,)", struct.pack("<4q", 1, 2, 3, 4))
npy("bigendian.npy", ">i4", "(4,)", struct.pack(">4i", 1, 2, 3, 4))
npy("twod.npy", "<i4", "(2, 3)", struct.pack("<6i", *range(6)))
npy("short.npy", "<i4", "(10,)", struct.pack("<3i", 1, 2, 3))
npy("long.npy", "<i4", "(2,)", struct.pack("<3i", 1, 2, 3))
npy("huge.npy", "<i4", "(4611686018427387904,)")        # 2^62 tokens: n * 4 wraps to 0 bytes
npy("hugedigits.npy", "<i4", "(99999999999999999999,)")  # does not fit an int64
with open("badmagic.npy", "wb") as f: f.write(b"PK\x03\x04 this is not a .npy file")
with open("header_cut.npy", "wb") as f: f.write(b"\x93NUMPY\x01\x00\x76\x00{'descr'")

# Configs.
with open("badjson.json", "w") as f: f.write('{"model": {"n_layer": 2,\n')
with open("unknown_key.json", "w") as f:
    f.write('{"model": {"n_layer": 1, "n_head": 2, "d_model": 8, "vocab_size": 5, "max_seq_len": 4, "n_heads": 2}}')
with open("no_model.json", "w") as f: f.write('{"train": {"steps": 2}}')
with open("array.json", "w") as f: f.write('[1, 2, 3]')
with open("model_only.json", "w") as f:
    f.write('{"model": {"n_layer": 1, "n_head": 2, "d_model": 8, "vocab_size": 5, "max_seq_len": 4}}')
with open("pooled.json", "w") as f:
    f.write('{"model": {"n_layer": 1, "n_head": 2, "d_model": 8, "vocab_size": 5, "max_seq_len": 4,'
            ' "head": "pooled", "n_classes": 3, "causal": false}}')
EOF

# --------------------------------------------------------------------------------------------
# Help

for sub in "" init eval train; do
  # shellcheck disable=SC2086
  run $sub --help
  if [ "$rc" -eq 0 ] && grep -q "Usage" out.txt; then pass "help: kvtie${sub:+ $sub} --help"; else fail "help: kvtie${sub:+ $sub} --help" "exit $rc"; fi
done
run --version
if [ "$rc" -eq 0 ] && grep -q "kvtie" out.txt; then pass "kvtie --version"; else fail "kvtie --version" "exit $rc"; fi
run
if [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ]; then pass "no subcommand: usage error"; else fail "no subcommand: usage error" "exit $rc"; fi
run init --config "$TINY"
if [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && grep -q -- "--out" err.txt; then pass "init without --out: usage error naming --out"
else fail "init without --out: usage error naming --out" "exit $rc" "$(cat err.txt)"; fi
run eval --model x --tokens y --batch 0
if [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && grep -q -- "--batch" err.txt; then pass "eval --batch 0: usage error naming --batch"
else fail "eval --batch 0: usage error naming --batch" "exit $rc" "$(cat err.txt)"; fi

# --------------------------------------------------------------------------------------------
# init

expect_ok "init tiny" init --config "$TINY" --seed 1 --out m.safetensors
check "init: wrote the checkpoint" test -s m.safetensors
check "init: text output names the file and the variant" grep -q "wrote m.safetensors: QKV" out.txt
check "init: no temporary file left behind" bash -c '! ls m.safetensors.tmp.* >/dev/null 2>&1'

expect_ok "init --json" init --config "$TINY" --seed 1 --out m_again.safetensors --json
cp out.txt init.json
# tiny: tok 32·64 + pos 32·64 + 2 blocks × 49984 + ln_f 128 = 104192
check "init --json: one JSON object with params" \
  test "$(json_get init.json 'isinstance(j, dict) and j["params"] == 104192 and j["variant"] == "QKV" and j["config"]["vocab_size"] == 32 and j["kv_bytes_per_token_fp16"] == 512')" = True
check "init: same seed, byte-identical files" cmp -s m.safetensors m_again.safetensors

expect_ok "init seed 2" init --config "$TINY" --seed 2 --out m_seed2.safetensors
check "init: another seed, another file" bash -c '! cmp -s m.safetensors m_seed2.safetensors'

expect_ok "init --set model.share=kv" init --config "$TINY" --seed 1 --set model.share=kv --out kv.safetensors --json
cp out.txt kv.json
check "share kv: file has attn.k_v.weight" grep -qaF "blocks.0.attn.k_v.weight" kv.safetensors
check "share kv: file has no attn.v.weight" bash -c '! grep -qaF "attn.v.weight" kv.safetensors'
check "share kv: file has no attn.k.weight" bash -c '! grep -qaF "attn.k.weight" kv.safetensors'
check "share none: file has attn.v.weight" grep -qaF "blocks.1.attn.v.weight" m.safetensors
# kv drops the V projection: 2 blocks × (64·64 + 64) fewer parameters; half the KV cache.
check "share kv: --json variant, params, kv bytes" \
  test "$(json_get kv.json 'j["variant"] == "Q-K=V" and j["params"] == 104192 - 2 * (64 * 64 + 64) and j["kv_bytes_per_token_fp16"] == 256')" = True
check "share kv: differs from share none" bash -c '! cmp -s m.safetensors kv.safetensors'

expect_ok "init qkv + MQA-style overrides" init --config "$TINY" --set model.share=qkv --set model.causal=false \
  --out qkv.safetensors --json
check "share qkv: only attn.q_k_v" bash -c 'grep -qaF "attn.q_k_v.weight" qkv.safetensors && ! grep -qaF "attn.q.weight" qkv.safetensors'
expect_ok "init GQA via --set" init --config "$TINY" --set model.n_kv_head=2 --set model.share=kv --out gqa.safetensors --json
check "GQA: variant label" test "$(json_get out.txt 'j["variant"]')" = "Q-GQA-2"

expect_ok "init --dtype bf16" init --config "$TINY" --seed 1 --dtype bf16 --out bf16.safetensors
check "bf16 checkpoint is about half the size" \
  test "$(stat -c %s bf16.safetensors)" -lt "$(( $(stat -c %s m.safetensors) * 6 / 10 ))"

# A ViT (docs/vision.md): init, the tensors it writes, profile, and a config that cannot be.
cat >vit.json <<'EOF2'
{"model": {"n_layer": 2, "n_head": 4, "d_model": 32, "share": "kv", "n_classes": 10,
           "image": {"channels": 1, "height": 28, "width": 28, "patch": 7}, "pool": "cls", "pos": "learned"}}
EOF2
expect_ok "init ViT --json" init --config vit.json --out vit.safetensors --json
cp out.txt vit_init.json
check "init ViT: 17 positions, no vocabulary" \
  test "$(json_get out.txt 'j["config"]["max_seq_len"] == 17 and "vocab_size" not in j["config"] and j["variant"] == "Q-K=V"')" = True
check "init ViT: patch_emb and cls_token, no tok_emb" \
  bash -c 'grep -qaF "patch_emb.weight" vit.safetensors && grep -qaF "cls_token" vit.safetensors && ! grep -qaF "tok_emb" vit.safetensors'
expect_ok "profile ViT --json" profile --config vit.json --variants QKV,Q-K=V --json
check "profile ViT: the Q-K=V row counts init's parameters" \
  test "$(json_get out.txt 'j["models"][0]["variants"][1]["params"]["total"]')" = "$(json_get vit_init.json 'j["params"]')"
expect_error "ViT: patch must divide the image" "vit.json" "model.image.patch" -- \
  init --config vit.json --set model.image.patch=5 --out x.safetensors
expect_error "ViT: causal image model" "model.causal" -- init --config vit.json --set model.causal=true --out x.safetensors

# --------------------------------------------------------------------------------------------
# eval

expect_ok "eval 70 tokens --json" eval --model m.safetensors --tokens t70.npy --json
cp out.txt e70.json
# Windows of max_seq_len 32: 32 + 32 + 6 tokens; each predicts all but its first: 70 − ceil(70/32) = 67.
check "eval: JSON with loss, ppl, tokens; tokens = 70 - 3" \
  test "$(json_get e70.json 'sorted(j) == ["loss", "ppl", "tokens"] and j["tokens"] == 67')" = True
check "eval: ppl = exp(loss)" test "$(json_get e70.json 'abs(j["ppl"] - math.exp(j["loss"])) < 1e-9 * j["ppl"]')" = True
expect_ok "eval 65 tokens (last window of 1 token)" eval --model m.safetensors --tokens t65.npy --json
check "eval: tokens = 65 - 3" test "$(json_get out.txt 'j["tokens"]')" = 62
expect_ok "eval exactly one window" eval --model m.safetensors --tokens t32.npy --json
check "eval: tokens = 32 - 1" test "$(json_get out.txt 'j["tokens"]')" = 31
expect_ok "eval 2 tokens" eval --model m.safetensors --tokens t2.npy --json
check "eval: tokens = 1" test "$(json_get out.txt 'j["tokens"]')" = 1

expect_ok "eval 4096 random tokens" eval --model m.safetensors --tokens r4096.npy --json
cp out.txt r.json
# Normal(0, 0.02) weights: the logits are nearly uniform, so the loss is close to ln(vocab) = ln 32.
check "eval: untrained loss within 0.1 of ln 32 = 3.466" \
  test "$(json_get r.json 'j["tokens"] == 4096 - 128 and abs(j["loss"] - math.log(32)) < 0.1')" = True

expect_ok "eval int32 token file" eval --model m.safetensors --tokens t70_i4.npy --json
check "eval: uint16 and int32 files give the same result" cmp -s out.txt e70.json
expect_ok "eval .npy format version 2" eval --model m.safetensors --tokens t70_v2.npy --json
check "eval: .npy v1 and v2 give the same result" cmp -s out.txt e70.json
if "$PY" -c 'import numpy' 2>/dev/null; then
  "$PY" -c 'import numpy as np; np.save("np70.npy", (np.arange(70) * 7 % 32).astype(np.uint16))'
  expect_ok "eval numpy-written file" eval --model m.safetensors --tokens np70.npy --json
  check "eval: numpy file gives the same result" cmp -s out.txt e70.json
fi
for b in 1 2 3; do
  expect_ok "eval --batch $b" eval --model m.safetensors --tokens r4096.npy --json --batch "$b"
  check "eval --batch $b: same tokens and loss" \
    test "$("$PY" -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); print(a["tokens"]==b["tokens"] and abs(a["loss"]-b["loss"])<1e-5)' r.json out.txt)" = True
done
expect_ok "eval --threads 1" eval --model m.safetensors --tokens t70.npy --json --threads 1
check "eval --threads 1: same loss" \
  test "$("$PY" -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); print(abs(a["loss"]-b["loss"])<1e-5)' e70.json out.txt)" = True
expect_ok "eval text output" eval --model m.safetensors --tokens t70.npy
check "eval: text output" grep -q "^loss .* ppl .* tokens 67$" out.txt
expect_ok "eval bf16 checkpoint" eval --model bf16.safetensors --tokens r4096.npy --json
check "eval: bf16 loss close to f32 loss" \
  test "$("$PY" -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); print(abs(a["loss"]-b["loss"])<0.01)' r.json out.txt)" = True
expect_ok "eval share kv checkpoint" eval --model kv.safetensors --tokens t70.npy --json
expect_ok "eval GQA checkpoint" eval --model gqa.safetensors --tokens t70.npy --json

# --------------------------------------------------------------------------------------------
# train (a few steps)

expect_ok "train 3 steps" train --config "$TINY" --set train.steps=3 --set train.log_every=1 \
  --set "train.out_dir=$TMP/run" --json
cp out.txt train.json
check "train: JSON summary" test "$(json_get train.json 'j["steps"] == 3 and j["variant"] == "QKV" and j["final_loss"] > 0')" = True
check "train: metrics.jsonl has 3 lines" test "$(wc -l <run/metrics.jsonl)" -eq 3
check "train: wrote model.safetensors" test -s run/model.safetensors
expect_ok "eval the trained checkpoint" eval --model run/model.safetensors --tokens t70.npy --json

# --------------------------------------------------------------------------------------------
# Bad configs

expect_error "config file missing" "nope.json" -- init --config nope.json --out x.safetensors
expect_error "config: invalid JSON" "badjson.json" "invalid JSON" -- init --config badjson.json --out x.safetensors
expect_error "config: not an object" "array.json" -- init --config array.json --out x.safetensors
expect_error "config: unknown model key" "unknown_key.json" "model.n_heads" "unknown key" -- \
  init --config unknown_key.json --out x.safetensors
expect_error "config: no model section" "no_model.json" "model" -- init --config no_model.json --out x.safetensors
expect_error "--set model.n_kv_head=3" "n_kv_head" "3" -- init --config "$TINY" --set model.n_kv_head=3 --out x.safetensors
check "failed init writes no file" test ! -e x.safetensors
expect_error "--set model.n_kv_head=8" "n_kv_head" -- init --config "$TINY" --set model.n_kv_head=8 --out x.safetensors
expect_error "--set model.share=bogus" "share" "bogus" -- init --config "$TINY" --set model.share=bogus --out x.safetensors
expect_error "--set share qk with GQA" "share" -- init --config "$TINY" --set model.share=qk --set model.n_kv_head=2 --out x.safetensors
expect_error "--set model.d_model=2.5" "d_model" -- init --config "$TINY" --set model.d_model=2.5 --out x.safetensors
expect_error "--set model.n_layer=-1" "n_layer" -- init --config "$TINY" --set model.n_layer=-1 --out x.safetensors
expect_error "--set model.bogus=1" "model.bogus" -- init --config "$TINY" --set model.bogus=1 --out x.safetensors
expect_error "--set without =" "--set" "model.share" -- init --config "$TINY" --set model.share --out x.safetensors
expect_ok "--set into a section the file lacks" init --config model_only.json --set train.steps=5 --out mo.safetensors
expect_error "init --out in a missing directory" "nodir/m.safetensors" -- init --config "$TINY" --out nodir/m.safetensors
expect_error "train: --set train.steps=0" "train.steps" -- train --config "$TINY" --set train.steps=0 \
  --set "train.out_dir=$TMP/run0"
expect_error "train: unknown train key" "train.stepz" -- train --config "$TINY" --set train.stepz=3 \
  --set "train.out_dir=$TMP/run0"
expect_error "train: --set train.lr=-1" "train.lr" -- train --config "$TINY" --set train.lr=-1 --set "train.out_dir=$TMP/run0"
check "failed train writes no run directory" test ! -e run0

# --------------------------------------------------------------------------------------------
# Bad token files

expect_error "eval: token file missing" "missing.npy" -- eval --model m.safetensors --tokens missing.npy
expect_error "eval: token out of vocabulary" "oov.npy" "40" -- eval --model m.safetensors --tokens oov.npy
expect_error "eval: negative token" "negative.npy" "-5" -- eval --model m.safetensors --tokens negative.npy
expect_error "eval: empty token file" "empty.npy" -- eval --model m.safetensors --tokens empty.npy
expect_error "eval: a single token" "one.npy" -- eval --model m.safetensors --tokens one.npy
expect_error "eval: float64 .npy" "float64.npy" "<f8" -- eval --model m.safetensors --tokens float64.npy
expect_error "eval: int64 .npy" "int64.npy" -- eval --model m.safetensors --tokens int64.npy
expect_error "eval: big-endian .npy" "bigendian.npy" -- eval --model m.safetensors --tokens bigendian.npy
expect_error "eval: 2-D .npy" "twod.npy" "1-D" -- eval --model m.safetensors --tokens twod.npy
expect_error "eval: truncated .npy data" "short.npy" -- eval --model m.safetensors --tokens short.npy
expect_error "eval: .npy with extra data" "long.npy" -- eval --model m.safetensors --tokens long.npy
expect_error "eval: not a .npy file" "badmagic.npy" -- eval --model m.safetensors --tokens badmagic.npy
expect_error "eval: truncated .npy header" "header_cut.npy" -- eval --model m.safetensors --tokens header_cut.npy
expect_error "eval: .npy shape 2^62" "huge.npy" -- eval --model m.safetensors --tokens huge.npy
expect_error "eval: .npy shape beyond int64" "hugedigits.npy" -- eval --model m.safetensors --tokens hugedigits.npy
mkdir -p subdir
expect_error "eval: token file is a directory" "subdir" -- eval --model m.safetensors --tokens subdir

# --------------------------------------------------------------------------------------------
# Bad checkpoints

expect_error "eval: model missing" "nonexistent.safetensors" -- eval --model nonexistent.safetensors --tokens t70.npy
head -c 1000 m.safetensors >cut_header.safetensors
expect_error "eval: checkpoint cut in the header" "cut_header.safetensors" -- \
  eval --model cut_header.safetensors --tokens t70.npy
head -c "$(( $(stat -c %s m.safetensors) - 100 ))" m.safetensors >cut_data.safetensors
expect_error "eval: checkpoint cut in the data" "cut_data.safetensors" -- eval --model cut_data.safetensors --tokens t70.npy
head -c 5 m.safetensors >cut5.safetensors
expect_error "eval: 5-byte checkpoint" "cut5.safetensors" -- eval --model cut5.safetensors --tokens t70.npy
: >zero.safetensors
expect_error "eval: empty checkpoint" "zero.safetensors" -- eval --model zero.safetensors --tokens t70.npy
head -c 100000 /dev/urandom >random.safetensors
expect_error "eval: checkpoint of random bytes" "random.safetensors" -- eval --model random.safetensors --tokens t70.npy
{ cat m.safetensors; printf 'trailing'; } >trailing.safetensors
expect_error "eval: checkpoint with trailing bytes" "trailing.safetensors" -- eval --model trailing.safetensors --tokens t70.npy
expect_error "eval: checkpoint is a directory" "subdir" -- eval --model subdir --tokens t70.npy
expect_error "eval: a token file as checkpoint" "t70.npy" -- eval --model t70.npy --tokens t70.npy
expect_error "eval: config file as checkpoint" "tiny.json" -- eval --model "$TINY" --tokens t70.npy
expect_ok "init pooled-head model" init --config pooled.json --out pooled.safetensors
expect_error "eval: model without an LM head" "LM head" -- eval --model pooled.safetensors --tokens t2.npy

# Edited headers: same file, one change each.
"$PY" - <<'EOF'
import json, struct
raw = open("m.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]

def write(name, h, body=data):
    text = json.dumps(h).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    open(name, "wb").write(struct.pack("<Q", len(text)) + text + body)

def edited(edit):
    h = json.loads(json.dumps(header))
    edit(h)
    return h

def config_edit(**kw):
    def f(h):
        c = json.loads(h["__metadata__"]["kvtie.config"])
        c.update(kw)
        h["__metadata__"]["kvtie.config"] = json.dumps(c)
    return f

write("h_kv3.safetensors", edited(config_edit(n_kv_head=3)))
write("h_unknown.safetensors", edited(config_edit(bogus=1)))
write("h_share.safetensors", edited(config_edit(share="kv")))
write("h_vocab.safetensors", edited(config_edit(vocab_size=64)))
write("h_huge.safetensors", edited(config_edit(vocab_size=2147483647, d_model=1048576)))
write("h_shape.safetensors", edited(lambda h: h["tok_emb.weight"].update(shape=[64, 32])))
write("h_dtype.safetensors", edited(lambda h: h["blocks.0.ln1.weight"].update(dtype="I32")))
write("h_unknown_dtype.safetensors", edited(lambda h: h["blocks.0.ln1.weight"].update(dtype="F17")))
write("h_offsets.safetensors", edited(lambda h: h["ln_f.bias"].update(data_offsets=[0, 10 ** 12])))
write("h_rename.safetensors", edited(lambda h: h.update({"blocks.0.attn.x.weight": h.pop("blocks.0.attn.v.weight")})))
write("h_nometa.safetensors", edited(lambda h: h.pop("__metadata__")))
write("h_badmeta.safetensors", edited(lambda h: h["__metadata__"].update({"kvtie.config": "{not json"})))
h = json.dumps(header).encode()
open("h_notjson.safetensors", "wb").write(struct.pack("<Q", len(h)) + h.replace(b"{", b"[", 1) + data)
EOF
expect_error "checkpoint: config n_kv_head=3" "h_kv3.safetensors" "n_kv_head" -- eval --model h_kv3.safetensors --tokens t70.npy
expect_error "checkpoint: config with unknown key" "h_unknown.safetensors" "bogus" -- eval --model h_unknown.safetensors --tokens t70.npy
expect_error "checkpoint: config of another variant" "h_share.safetensors" "attn.k_v.weight" -- \
  eval --model h_share.safetensors --tokens t70.npy
expect_error "checkpoint: config vocab differs" "h_vocab.safetensors" "tok_emb.weight" -- \
  eval --model h_vocab.safetensors --tokens t70.npy
expect_error "checkpoint: config claims a huge model" "h_huge.safetensors" -- eval --model h_huge.safetensors --tokens t70.npy
expect_error "checkpoint: tensor shape edited" "h_shape.safetensors" "tok_emb.weight" -- \
  eval --model h_shape.safetensors --tokens t70.npy
expect_error "checkpoint: tensor dtype edited" "h_dtype.safetensors" "blocks.0.ln1.weight" -- \
  eval --model h_dtype.safetensors --tokens t70.npy
expect_error "checkpoint: unknown dtype" "h_unknown_dtype.safetensors" "F17" -- \
  eval --model h_unknown_dtype.safetensors --tokens t70.npy
expect_error "checkpoint: data offsets out of range" "h_offsets.safetensors" "ln_f.bias" -- \
  eval --model h_offsets.safetensors --tokens t70.npy
expect_error "checkpoint: tensor renamed" "h_rename.safetensors" "attn.v.weight" -- \
  eval --model h_rename.safetensors --tokens t70.npy
expect_error "checkpoint: no kvtie metadata" "h_nometa.safetensors" "kvtie.config" -- \
  eval --model h_nometa.safetensors --tokens t70.npy
expect_error "checkpoint: metadata config not JSON" "h_badmeta.safetensors" "kvtie.config" -- \
  eval --model h_badmeta.safetensors --tokens t70.npy
expect_error "checkpoint: header not JSON" "h_notjson.safetensors" -- eval --model h_notjson.safetensors --tokens t70.npy

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
