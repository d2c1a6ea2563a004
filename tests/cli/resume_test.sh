#!/usr/bin/env bash
# A run killed with SIGKILL mid-way and resumed with `kvtie train --resume` must end with weights
# bit-identical to an uninterrupted run; a write cut short leaves the previous checkpoint usable.
# Usage: resume_test.sh KVTIE_BINARY REPO_ROOT
set -u
kvtie=$1
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cat > run.json <<'JSON'
{"model": {"n_layer": 4, "n_head": 4, "d_model": 128, "vocab_size": 64, "max_seq_len": 64, "share": "kv"},
 "train": {"task": "induction", "steps": 60, "batch_size": 16, "seq_len": 64, "lr": 3e-3, "warmup_steps": 5,
           "ckpt_every": 10, "keep_last": 2, "log_every": 5, "seed": 3}}
JSON

"$kvtie" train --config run.json --set train.out_dir=full --json >full.json || { echo "FAIL: uninterrupted run"; exit 1; }

"$kvtie" train --config run.json --set train.out_dir=cut --json >/dev/null 2>&1 &
pid=$!
# Wait for the step-20 checkpoint, then kill without warning.
for _ in $(seq 1 600); do
  step=$(sed -n 's/.*"step":\([0-9]*\).*/\1/p' cut/latest.json 2>/dev/null)
  [[ -n "$step" && "$step" -ge 20 ]] && break
  sleep 0.02
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
killed_at=$(sed -n 's/.*"step":\([0-9]*\).*/\1/p' cut/latest.json)
check "the run was killed before it finished" test "$killed_at" -lt 60
check "the killed run left no final model" test ! -e cut/model.safetensors

# A checkpoint write cut short: a temporary file, never renamed, must be ignored.
head -c 1000 "cut/ckpt-$(printf %08d "$killed_at").safetensors" >"cut/ckpt-$(printf %08d $((killed_at + 10))).safetensors.tmp.999"

"$kvtie" train --resume cut --json >resumed.json || echo "FAIL: resume"
check "resumed from the checkpoint" grep -q "\"first_step\":$killed_at" resumed.json
check "bit-identical final weights" cmp -s full/model.safetensors cut/model.safetensors
check "no leftover temporary files" test -z "$(ls cut | grep '\.tmp\.')"
check "kept the last 2 checkpoints" test "$(ls cut | grep -c '^ckpt-.*\.state\.safetensors$')" -eq 2
steps=$(grep -o '"step":[0-9]*,"tokens' cut/metrics.jsonl | sort | uniq -d | wc -l)
check "metrics.jsonl has each step once" test "$steps" -eq 0
check "same logged losses" cmp -s <(grep -v elapsed_s full/metrics.jsonl) <(grep -v elapsed_s cut/metrics.jsonl)

"$kvtie" train --resume cut --json >again.json
check "resuming a finished run does nothing" grep -q '"steps":60' again.json
check "a fresh run refuses a directory with checkpoints" bash -c "! '$kvtie' train --config run.json --set train.out_dir=cut 2>err.txt && grep -q -- '--resume' err.txt"
check "resume of a directory without checkpoints fails clearly" bash -c "! '$kvtie' train --resume nothere 2>err.txt && grep -q 'nothere' err.txt"

finish
