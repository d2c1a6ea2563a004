# Shared by the CLI test scripts: a temporary working directory, one thread per test (ctest runs
# two at once), and pass/fail counting that ends in the plain "N passed, M failed" line.
# shellcheck shell=bash
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
passed=0 failed=0

check() {  # check NAME COMMAND...
  if "${@:2}"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $1"; fi
}

finish() {
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
}
