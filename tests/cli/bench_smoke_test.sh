#!/usr/bin/env bash
# The benchmark programs at toy sizes, so that they keep building and running with the code they
# measure: each must exit 0 and print the rows its figures come from (`make bench` gives the
# figures themselves).
# Usage: bench_smoke_test.sh BENCH_DIR
set -u
bench=$1
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
prints() {  # prints NAME PATTERN COMMAND...: exit 0 and a line of stdout matching PATTERN
  local name=$1 pattern=$2
  shift 2
  "$@" >out.txt 2>err.txt
  local rc=$?
  if [[ $rc -eq 0 ]] && grep -q -- "$pattern" out.txt; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $name (exit $rc): $(tail -n 3 err.txt)"
  fi
}

prints train_step '"tokens_per_s".*"variant":"Q-K=V"' \
  "$bench/train_step" --d-model 32 --layers 1 --heads 2 --seq 16 --batch 2 --vocab 64 --steps 2 \
  --variant QKV --variant Q-K=V --json
prints decode '"paired_roofline_fraction"' \
  "$bench/decode" --context 64 --batch 1 2 --dtype fp32 int8 --layers 1 --d-model 64 --heads 2 --steps 3 \
  --variants QKV Q-K=V --budget-gib 0.001 --budget-context 64 --no-cache-context 32 --json
check decode_ratio grep -q '"ratio":"Q-K=V/QKV"' out.txt
check decode_interleaved grep -q '"interleaved":' out.txt
prints decode_kernel '"mem_ns_per_pos"' \
  "$bench/decode_kernel" --l3-context 64 --mem-context 256 --mem-batch 1 --heads 2 --kv-heads 2 \
  --dtype fp32 int8 --rounds 1 --json
# dot_rates times AVX-512 instructions; a build without them must say so in one line and exit 1.
if "$bench/dot_rates" --json >out.txt 2>err.txt; then
  check dot_rates grep -q '"ceiling_gbs".*"share":"K=V"' out.txt
else
  check dot_rates_without_avx512 grep -q '^error: dot_rates: this build has no AVX-512' err.txt
fi
"$bench/dot_rates" --heads 6 --kv-heads 4 >out.txt 2>err.txt
check dot_rates_bad_heads_exits_1 test $? -eq 1
check dot_rates_bad_heads_says_why grep -q 'must be a positive multiple of --kv-heads 4' err.txt
prints tokenize '"encode' "$bench/tokenize" --mb 0.01 --repeat 1 --json
finish
