#!/usr/bin/env bash
# kvtie train with task "image" end to end on a tiny IDX data set written here: per-epoch test
# accuracy in the summary and metrics.jsonl, a run stopped mid-epoch and continued with --resume
# ending bit-identical to an uninterrupted one, and bad configs as one-line errors naming the key;
# then set anomaly detection on the trained ViT's frozen features.
# Usage: image_train_test.sh KVTIE_BINARY REPO_ROOT
set -u
kvtie=$(realpath "$1")
root=$(realpath "$2")
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# 8x8 images in 4 classes, pixel = 50·class + uniform 0..60: 200 to train, 64 to test.
/usr/bin/python3 - <<'EOF'
import os, random, struct
os.makedirs("data", exist_ok=True)
def split(prefix, n, seed):
    r = random.Random(seed)
    images = struct.pack(">IIII", 0x803, n, 8, 8)
    labels = struct.pack(">II", 0x801, n)
    for _ in range(n):
        c = r.randrange(4)
        labels += bytes([c])
        images += bytes(50 * c + r.randrange(61) for _ in range(64))
    open(f"data/{prefix}-images-idx3-ubyte", "wb").write(images)
    open(f"data/{prefix}-labels-idx1-ubyte", "wb").write(labels)
split("train", 200, 1)
split("t10k", 64, 2)
EOF

cat >vit.json <<'JSON'
{"model": {"n_layer": 1, "n_head": 2, "d_model": 16, "d_ff": 32, "share": "kv",
           "image": {"channels": 1, "height": 8, "width": 8, "patch": 4}, "pool": "mean", "n_classes": 4},
 "train": {"task": "image", "images": {"format": "idx", "paths": ["data"], "augment": {"crop_padding": 1, "flip": true}},
           "steps": 60, "batch_size": 16, "val_every": 12, "ckpt_every": 10, "log_every": 4,
           "lr": 1e-2, "warmup_steps": 0, "schedule": "step", "lr_step_every": 24, "lr_step_gamma": 0.5,
           "weight_decay": 0, "beta2": 0.999, "grad_clip": 0, "seed": 3}}
JSON

"$kvtie" train --config vit.json --set train.out_dir=full --json >full.json 2>full.err
check "train --json succeeds" test $? -eq 0
check "summary: test accuracy of all 64 test images, images/s" \
  test "$(jq '.val_examples == 64 and .val_acc > 0.9 and .epoch == 5 and .images_per_s > 0 and .steps == 60' full.json)" = true
check "one test record per epoch (12 batches of 16 from 200 images)" \
  test "$(jq -c 'select(.val_acc) | [.step, .epoch]' full/metrics.jsonl | tr -d '\n')" = "[12,1][24,2][36,3][48,4][60,5]"
check "records carry the epoch's training accuracy" test "$(jq -s '[.[] | select(.val_acc) | has("train_acc")] | all' full/metrics.jsonl)" = true
check "the config is saved with its images object" test "$(jq -r '.train.images.format' full/config.json)" = idx

# Stopped at step 20 (in the middle of epoch 2), then continued to 60: the step schedule does not
# depend on train.steps, so this is the uninterrupted run.
"$kvtie" train --config vit.json --set train.out_dir=cut --set train.steps=20 --json >/dev/null 2>&1
"$kvtie" train --resume cut --set train.steps=60 --json >resumed.json 2>resumed.err
check "resume succeeds" test $? -eq 0
check "resumed from step 20" test "$(jq .first_step resumed.json)" = 20
check "bit-identical final weights" cmp -s full/model.safetensors cut/model.safetensors
check "the same final test metrics" test "$(jq -c '[.val_acc, .val_loss, .train_acc]' resumed.json)" = \
  "$(jq -c '[.val_acc, .val_loss, .train_acc]' full.json)"

"$kvtie" train --config vit.json --set train.out_dir=text --set train.steps=12 >text.txt 2>/dev/null
check "text summary names the test accuracy" grep -q "test accuracy .* (loss .*, 64 images) after 1.00 epochs" text.txt

# expect_error NAME NEEDLE -- ARGS...: exit status 1 and one line on stderr that holds NEEDLE.
expect_error() {
  local name=$1 needle=$2
  shift 3
  "$kvtie" "$@" >/dev/null 2>err.txt
  local rc=$?
  check "$name" test "$rc" -eq 1 -a "$(wc -l <err.txt)" -eq 1
  check "$name: names '$needle'" grep -qF -- "$needle" err.txt
}
expect_error "unknown image format" "train.images.format: unknown image format 'svhn'" -- \
  train --config vit.json --set train.images.format=svhn --set train.out_dir=bad
expect_error "missing data folder" "train.images: " -- train --config vit.json --set train.images.paths=nowhere \
  --set train.out_dir=bad
expect_error "token model with task image" "train.task: 'image' needs an image model" -- \
  train --config "$root/configs/tiny.json" --set train.task=image --set train.images.format=fashion-mnist \
  --set train.out_dir=bad
jq '.train.task = "induction" | del(.train.images)' vit.json >vit_tokens.json
expect_error "image model with a token task" "train.task: 'induction' trains on tokens" -- \
  train --config vit_tokens.json --set train.out_dir=bad
expect_error "labels beyond model.n_classes" "model.n_classes: 3" -- train --config vit.json --set model.n_classes=3 \
  --set train.out_dir=bad
expect_error "step schedule without lr_step_every" "train.lr_step_every" -- train --config vit.json \
  --set train.lr_step_every=0 --set train.out_dir=bad
check "failed runs write no run directory" test ! -e bad

# Set anomaly detection on the frozen features of the ViT trained above, from the committed config
# with the data, the feature model and the set size overridden (sets of 5: the data has 4 classes).
anomaly=(train --config "$root/configs/vision/set-anomaly.json" --set train.images.format=idx
  --set train.images.paths=data --set train.anomaly.features=full/model.safetensors --set train.anomaly.set_size=5
  --set model.image.channels=16 --set model.image.width=5 --set train.steps=40 --set train.val_every=20
  --set train.ckpt_every=20 --set train.test_examples=50 --set train.warmup_steps=0 --set train.lr=3e-3)
"$kvtie" "${anomaly[@]}" --set train.out_dir=sets --json >sets.json 2>sets.err
check "set-anomaly --json succeeds" test $? -eq 0
check "summary: odd item found in most of 50 test sets, sets/s" \
  test "$(jq '.val_sets == 50 and .val_acc > 0.6 and .sets_per_s > 0 and .steps == 40' sets.json)" = true
check "step records count sets" test "$(jq -s '[.[] | select(.loss) | has("sets")] | all' sets/metrics.jsonl)" = true
"$kvtie" "${anomaly[@]}" --set train.out_dir=sets_text --set train.steps=20 >sets.txt 2>/dev/null
check "text summary names the odd-item accuracy" grep -q "odd item found in .* of 50 test sets" sets.txt
expect_error "set size beyond the set model's width" "'set-anomaly' scores each item of a set" -- \
  "${anomaly[@]}" --set train.anomaly.set_size=6 --set train.out_dir=bad
expect_error "features of a model that is not there" "train.anomaly.features: " -- \
  "${anomaly[@]}" --set train.anomaly.features=nowhere.safetensors --set train.out_dir=bad

finish
