#!/usr/bin/env bash
# Training-step throughput of kvtie (bench/train_step) against the same GPT written plainly in
# PyTorch (bench/peers/torch_gpt.py), on the two benchmark configs, one attention variant at a time.
#
# Before timing, every model is checked to be the same in both: kvtie init writes each config's
# checkpoint, the peer must have the same tensor names, shapes and parameter count, and `kvtie eval`
# must reproduce the peer's loss on the peer's own weights. Any mismatch aborts.
#
# The two programs run alternately per variant (who goes first alternates too) so both see the same
# machine state; each timing is the best of N steps after two warm-ups. With --rounds R the whole
# alternation runs R times and each program keeps its best run per row: on a shared machine whose
# speed comes and goes, the best of several interleaved runs is what each program can do, and both
# get the same chances. % SGEMM is against the OpenBLAS SGEMM rate train_step measured in the same
# process as its best timing: after each timed step it times a window of SGEMM calls as long as
# that step, and keeps the best window, the same statistic as the step's.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
train_step=${KVTIE_TRAIN_STEP:-$root/build/release/bench/train_step}
kvtie=${KVTIE_BIN:-$root/build/release/kvtie}
# Debian's python3-torch lives in the system interpreter; a python3 earlier on PATH may lack it.
peer=(/usr/bin/python3 "$root/bench/peers/torch_gpt.py")

all_variants=(QKV Q-K=V Q=K-V Q=K=V MQA Q-MQA)
all_configs=(d256 tiny)
declare -A shape=(
  [d256]="--d-model 256 --layers 4 --heads 4 --seq 128 --batch 16 --vocab 8192"
  [tiny]="--d-model 64 --layers 2 --heads 2 --seq 64 --batch 32 --vocab 16"
)
# The tiny model's steps take milliseconds, so it needs more of them for a stable best.
declare -A default_steps=([d256]=5 [tiny]=20)

usage() {
  cat <<EOF
Usage: bench/compare_train.sh [--json] [--config NAME]... [--variant LABEL]... [--steps N] [--rounds R]
                              [--threads N] [--no-check | --check-only]

  --config NAME    d256 (${shape[d256]})
                   tiny (${shape[tiny]}); repeatable, default both
  --variant LABEL  ${all_variants[*]}; repeatable, default all
  --steps N        timed steps per variant (default: d256 ${default_steps[d256]}, tiny ${default_steps[tiny]})
  --rounds R       alternations of the two programs over every row; each keeps its best (default 1)
  --threads N      threads for both programs (default 2)
  --no-check       skip the model-equality check
  --check-only     run only the model-equality check
  --json           one JSON object per line: a header, then one per (config, variant)
Binaries: \$KVTIE_TRAIN_STEP (default build/release/bench/train_step), \$KVTIE_BIN (build/release/kvtie).
EOF
}

json=false check=true check_only=false steps="" rounds=1 threads=2 configs=() variants=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --json) json=true ;;
    --no-check) check=false ;;
    --check-only) check_only=true ;;
    --config) configs+=("${2:?--config needs a name}"); shift ;;
    --variant) variants+=("${2:?--variant needs a label}"); shift ;;
    --steps) steps=${2:?--steps needs a number}; shift ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift ;;
    --threads) threads=${2:?--threads needs a number}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "compare_train: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
say() { if ! $json; then echo "$@"; fi; }
die() { echo "compare_train: $*" >&2; exit 1; }

[[ ${#configs[@]} -gt 0 ]] || configs=("${all_configs[@]}")
[[ ${#variants[@]} -gt 0 ]] || variants=("${all_variants[@]}")
for c in "${configs[@]}"; do [[ -v "shape[$c]" ]] || die "unknown config $c (${all_configs[*]})"; done
for v in "${variants[@]}"; do [[ " ${all_variants[*]} " == *" $v "* ]] || die "unknown variant $v (${all_variants[*]})"; done
for bin in "$train_step" "$kvtie"; do [[ -x $bin ]] || die "$bin missing (make build)"; done
/usr/bin/python3 -c 'import torch' 2>/dev/null || die "no PyTorch in /usr/bin/python3 (scripts/setup --peer)"
export OMP_NUM_THREADS=$threads
# printf reads the decimals jq writes; a locale with a decimal comma would reject them.
export LC_ALL=C

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The value of option $2 in a shape string $1.
opt() {
  local -a a
  local i
  read -ra a <<<"$1"
  for ((i = 0; i < ${#a[@]}; i++)); do if [[ ${a[i]} == "$2" ]]; then echo "${a[i + 1]}"; fi; done
}

# share value and kv heads of a variant label, for a model with $2 heads.
variant_model() {
  case "$1" in
    QKV) echo "none $2" ;; Q-K=V) echo "kv $2" ;; Q=K-V) echo "qk $2" ;; Q=K=V) echo "qkv $2" ;;
    MQA) echo "none 1" ;; Q-MQA) echo "kv 1" ;;
  esac
}

check_config() {
  local name=$1 s=${shape[$1]} ckpts=() i=0
  local d heads
  d=$(opt "$s" --d-model) heads=$(opt "$s" --heads)
  declare -A kvtie_params=()
  for v in "${variants[@]}"; do
    local share kv
    read -r share kv <<<"$(variant_model "$v" "$heads")"
    jq -n --argjson L "$(opt "$s" --layers)" --argjson H "$heads" --argjson K "$kv" --argjson d "$d" \
      --argjson V "$(opt "$s" --vocab)" --argjson T "$(opt "$s" --seq)" --arg share "$share" \
      '{model: {n_layer: $L, n_head: $H, n_kv_head: $K, d_model: $d, d_ff: (4 * $d), vocab_size: $V,
                max_seq_len: $T, share: $share, causal: true}}' >"$tmp/$name-$i.json"
    kvtie_params[$v]=$("$kvtie" init --config "$tmp/$name-$i.json" --out "$tmp/$name-$i.safetensors" --json |
      jq -r .params)
    ckpts+=("$tmp/$name-$i.safetensors")
    i=$((i + 1))
  done
  # Some lines may be missing if the peer fails part-way; the loop below notices.
  "${peer[@]}" --threads "$threads" --check "${ckpts[@]}" --check-out "$tmp" >"$tmp/$name-check.jsonl" || true
  i=0
  for v in "${variants[@]}"; do
    local r
    r=$(jq -c --arg p "$tmp/$name-$i.safetensors" 'select(.checkpoint == $p)' "$tmp/$name-check.jsonl")
    [[ -n $r ]] || die "$name $v: the peer could not build the model (see its error above)"
    [[ $(jq -r .variant <<<"$r") == "$v" ]] || die "$name $v: the peer calls the model $(jq -r .variant <<<"$r")"
    [[ $(jq '.problems | length' <<<"$r") -eq 0 ]] ||
      die "$name $v: tensors differ: $(jq -r '.problems | join("; ")' <<<"$r")"
    local pp
    pp=$(jq -r .params <<<"$r")
    [[ $pp == "${kvtie_params[$v]}" ]] || die "$name $v: kvtie has ${kvtie_params[$v]} parameters, the peer $pp"
    local theirs ours
    ours=$(jq -r .loss <<<"$r")
    theirs=$("$kvtie" eval --model "$(jq -r .peer_checkpoint <<<"$r")" --tokens "$(jq -r .tokens <<<"$r")" --json |
      jq -r .loss)
    # fp32 throughout, different summation orders: agreement to ~1e-6 is expected, 1e-4 is safe.
    jq -en --argjson a "$ours" --argjson b "$theirs" '(($a - $b) | fabs) <= 1e-4 * ([1, ($b | fabs)] | max)' \
      >/dev/null ||
      die "$name $v: on the same weights the peer's loss is $ours, kvtie's $theirs"
    say "check $name $v: $pp parameters, loss $ours (peer) vs $theirs (kvtie)"
    rm -f "$tmp/$name-$i".* "$tmp/$name-$i.peer".*
    i=$((i + 1))
  done
}

# Prints the result row (JSON) of one timed variant of program $1 (kvtie|torch).
time_one() {
  local prog=$1 name=$2 v=$3 n=$4 out
  local -a s
  read -ra s <<<"${shape[$name]}"
  if [[ $prog == kvtie ]]; then
    out=$("$train_step" "${s[@]}" --steps "$n" --variant "$v" --json)
  else
    out=$("${peer[@]}" "${s[@]}" --steps "$n" --variant "$v" --threads "$threads" --no-sgemm --json)
  fi
  # train_step's header carries the best single SGEMM call and the thread count; fold them into the row.
  jq -sc '.[0] as $h | .[1] + {sgemm_peak_gflops: $h.sgemm_peak_gflops, threads: $h.threads}' <<<"$out"
}

torch_info=$("${peer[@]}" --threads "$threads" --info)
blas=$(jq -r '.blas | join(", ")' <<<"$torch_info")
torch_threads=$(jq .threads <<<"$torch_info")
[[ $blas == *openblas-openmp* ]] ||
  echo "compare_train: warning: PyTorch uses BLAS '${blas:-?}', not libopenblas0-openmp" >&2
[[ $torch_threads -eq $threads ]] || echo "compare_train: warning: PyTorch runs $torch_threads threads, not $threads" >&2

if $check || $check_only; then
  for name in "${configs[@]}"; do check_config "$name"; done
fi
$check_only && exit 0

if $json; then
  jq -nc --argjson t "$torch_info" --argjson threads "$threads" --argjson checked "$check" \
    '{threads: $threads, torch: $t.torch, torch_blas: $t.blas, checked: $checked}'
else
  echo
  echo "training step (forward + backward + grad clip + AdamW), kvtie vs PyTorch $(jq -r .torch <<<"$torch_info"),"\
    "$threads threads"
  echo "PyTorch BLAS: $blas"
  for name in "${configs[@]}"; do echo "  $name: ${shape[$name]}"; done
  echo
  printf '%-6s %-7s %12s %14s %7s %14s %8s %9s\n' \
    config variant "kvtie tok/s" "PyTorch tok/s" ratio "kvtie GFLOP/s" "SGEMM" "% SGEMM"
fi
# best[program/config/variant]: the fastest row of that program so far (JSON).
declare -A best=()
keep_best() {
  local key=$1 row=$2
  if [[ -z ${best[$key]:-} ]] || jq -en --argjson a "$row" --argjson b "${best[$key]}" \
    '$a.tokens_per_s > $b.tokens_per_s' >/dev/null; then
    best[$key]=$row
  fi
}
k=0
for ((round = 1; round <= rounds; round++)); do
  ((rounds == 1)) || say "round $round of $rounds" >&2
  for name in "${configs[@]}"; do
    n=${steps:-${default_steps[$name]}}
    for v in "${variants[@]}"; do
      if ((k % 2 == 0)); then
        keep_best "kvtie/$name/$v" "$(time_one kvtie "$name" "$v" "$n")"
        keep_best "torch/$name/$v" "$(time_one torch "$name" "$v" "$n")"
      else
        keep_best "torch/$name/$v" "$(time_one torch "$name" "$v" "$n")"
        keep_best "kvtie/$name/$v" "$(time_one kvtie "$name" "$v" "$n")"
      fi
      k=$((k + 1))
    done
  done
done
for name in "${configs[@]}"; do
  n=${steps:-${default_steps[$name]}}
  for v in "${variants[@]}"; do
    row=$(jq -nc --arg config "$name" --argjson k "${best[kvtie/$name/$v]}" --argjson t "${best[torch/$name/$v]}" \
      --argjson steps "$n" --argjson rounds "$rounds" '{
      config: $config, variant: $k.variant, steps: $steps, rounds: $rounds,
      kvtie_tokens_per_s: $k.tokens_per_s, torch_tokens_per_s: $t.tokens_per_s,
      ratio: ($k.tokens_per_s / $t.tokens_per_s),
      kvtie_step_ms: $k.step_ms, torch_step_ms: $t.step_ms,
      kvtie_gflops: $k.gflops, torch_gflops: $t.gflops,
      sgemm_gflops: $k.sgemm_gflops, sgemm_peak_gflops: $k.sgemm_peak_gflops, kvtie_pct_sgemm: $k.pct_sgemm}')
    if $json; then
      echo "$row"
    else
      jq -r '[.config, .variant, .kvtie_tokens_per_s, .torch_tokens_per_s, .ratio, .kvtie_gflops, .sgemm_gflops,
              .kvtie_pct_sgemm] | @tsv' <<<"$row" | while IFS=$'\t' read -r c var kt tt r g sg p; do
        printf '%-6s %-7s %12.0f %14.0f %6.2fx %14.1f %8.1f %8.1f%%\n' "$c" "$var" "$kt" "$tt" "$r" "$g" "$sg" "$p"
      done
    fi
  done
done
