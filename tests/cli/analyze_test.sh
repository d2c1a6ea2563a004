#!/usr/bin/env bash
# kvtie analyze attention on a freshly initialised ViT and the packaged Fashion-MNIST: a PNG grid of
# the right size, maps that are attention weights, and clear errors.
# Usage: analyze_test.sh KVTIE_BINARY REPO_ROOT
set -u
kvtie=$1
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cat >vit.json <<'JSON'
{"model": {"n_layer": 2, "n_head": 3, "n_kv_head": 3, "d_model": 48, "d_ff": 96, "share": "qk",
           "image": {"channels": 1, "height": 28, "width": 28, "patch": 7}, "pool": "cls", "pos": "sincos2d",
           "n_classes": 10}}
JSON
"$kvtie" init --config vit.json --out vit.safetensors >/dev/null
"$kvtie" analyze attention --model vit.safetensors --image 5 --scale 2 --out maps/a.png --json >a.json
check "analyze succeeds" test $? -eq 0
check "png written" test -s maps/a.png
# 2 layers × (image + 3 heads) cells of 56 px with 2 px gaps: 4·56 + 3·2 = 230 wide, 2·56 + 2 = 114 high.
check "png size" test "$(/usr/bin/python3 -c "import struct; d=open('maps/a.png','rb').read(24); print(*struct.unpack('>II', d[16:24]))")" = "230 114"
check "3 heads × 2 layers of 4×4 maps" test "$(jq -c '[(.maps | length), (.maps[0] | length), (.maps[0][0] | length), .grid]' a.json)" = '[2,3,16,[4,4]]'
# The class token's weights on the 16 patches are what is left after its weight on itself: in (0, 1).
check "maps are attention weights" test "$(jq '[.maps[][][] ] | length' a.json)" -gt 0 -a \
  "$(jq '[.maps[][] | add] | all(. > 0 and . < 1)' a.json)" = true
check "label of image 5 is read" test "$(jq .label a.json)" -ge 0

cat >tok.json <<'JSON'
{"model": {"n_layer": 1, "n_head": 2, "d_model": 16, "vocab_size": 20, "max_seq_len": 8}}
JSON
"$kvtie" init --config tok.json --out tok.safetensors >/dev/null
"$kvtie" analyze attention --model tok.safetensors >/dev/null 2>err.txt
check "a token model is refused" grep -q "not a ViT checkpoint" err.txt
"$kvtie" analyze attention --model vit.safetensors --image 99999 >/dev/null 2>err.txt
check "an image past the end is refused" grep -q "past the last image" err.txt
finish
