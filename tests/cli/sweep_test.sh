#!/usr/bin/env bash
# kvtie sweep end to end on a tiny grid: every cell runs once, the table and CSV hold the right
# numbers, a re-run trains nothing, a lost result is retrained alone, and bad configs are clear
# errors. Usage: sweep_test.sh KVTIE_BINARY REPO_ROOT
set -u
kvtie=$1
root=$2
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cat >sweep.json <<JSON
{"base": "$root/configs/synthetic/base.json",
 "grid": [{"axis": "task", "set": "train.task", "values": ["copy", "sub"]},
          {"axis": "variant", "values": {"QKV": {"model.share": "none"},
                                         "(Q=K=V)+": {"model.share": "qkv", "model.score_pos2d": true}}},
          {"axis": "seed", "set": "train.seed", "values": [1, 2]}],
 "table": {"rows": "variant", "columns": "task", "seeds": "seed", "metric": "val_acc",
           "reference": {"name": "study", "values": {"QKV": 0.851}}}}
JSON
# Shorten the base run for the test: 8 digits, 60 steps, a small test set.
jq '.train.steps = 60 | .train.seq_len = 8 | .model.max_seq_len = 8 | .train.test_examples = 100 | .model.d_model = 16 | .model.d_ff = 32' \
  "$root/configs/synthetic/base.json" >base.json
jq '.base = "base.json"' sweep.json >s.json && mv s.json sweep.json

"$kvtie" sweep --config sweep.json --out out --jobs 2 --threads 1 --json >first.json 2>first.err
check "first run succeeds" test $? -eq 0
check "8 cells, all finished" test "$(jq -c '[.cells, .finished, .failed]' first.json)" = "[8,8,0]"
check "8 results" test "$(find out/cells -name result.json | wc -l)" -eq 8
check "csv has a header and 8 rows" test "$(wc -l <out/results.csv)" -eq 9
check "csv names the axes" grep -q '^cell,task,variant,seed,val_acc' out/results.csv
# The table's mean equals the mean of the CSV's cells for that row and column.
want=$(awk -F, '$2=="sub" && $3=="QKV" {s+=$5; n++} END {printf "%.3f", s/n}' out/results.csv)
check "table mean = csv mean" grep -q "| QKV | [0-9.]* ± [0-9.]* | $want ± " out/table.md
check "table has the reference column" grep -q "| QKV .* | 0.851 |" out/table.md
check "table.json rows" test "$(jq -c .rows out/table.json)" = '["QKV","(Q=K=V)+"]'
check "copy is learned" test "$(jq ".mean[0][0] > 0.9" out/table.json)" = true

# Nothing left to do: a second run trains no cell (no cell's files change).
before=$(stat -c %Y out/cells/*/result.json | sort | md5sum)
"$kvtie" sweep --config sweep.json --out out --json >second.json 2>/dev/null
check "re-run trains nothing" test "$(stat -c %Y out/cells/*/result.json | sort | md5sum)" = "$before"
# A lost result is retrained, alone.
victim=$(find out/cells -name result.json | head -1)
rm "$victim"
"$kvtie" sweep --config sweep.json --out out --jobs 1 --threads 1 2>third.err >/dev/null
check "one cell retrained" test "$(grep -c 'val_acc' third.err)" -eq 1
check "its result is back" test -f "$victim"

# Bad configs: one line naming the file and field.
echo '{"base": "base.json", "grid": []}' >bad1.json
"$kvtie" sweep --config bad1.json --out bad >/dev/null 2>err.txt
check "empty grid is an error" grep -q "bad1.json.grid" err.txt
echo '{"base": "base.json", "grid": [{"axis": "a", "set": "train.seed", "values": [1]}], "table": {"rows": "b", "columns": "a"}}' >bad2.json
"$kvtie" sweep --config bad2.json --out bad >/dev/null 2>err.txt
check "table axis must exist" grep -q "table.rows: 'b' is not an axis" err.txt
echo '{"base": "base.json", "grid": [{"axis": "a", "set": "train.task", "values": ["rotate"]}]}' >bad3.json
"$kvtie" sweep --config bad3.json --out bad3 --threads 1 >/dev/null 2>err.txt
rc=$?
check "a failing cell fails the sweep" test $rc -eq 1
check "and says why" grep -q "unknown task 'rotate'" err.txt

# plot --sweep draws the bars.
if command -v gnuplot >/dev/null; then
  "$kvtie" plot --sweep out --out plots >/dev/null 2>&1
  check "bar chart written" test -s plots/sweep_bars.png -a -s plots/sweep_bars.svg
fi
finish
