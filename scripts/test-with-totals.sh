#!/usr/bin/env bash
# Runs `pnpm test` and closes with the failed tests (vitest's FAIL lines with the first lines of
# their errors, so the end of a long CI log says what broke) and one line totalling every vitest
# run (vitest's own lines are per package): `Tests: N passed, N failed`. The exit status is pnpm
# test's.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
pnpm test 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
plain() { sed 's/\x1b\[[0-9;]*m//g' "$log"; }
failures=$(plain | awk '
  / FAIL / && / > / { shown = 8; count++ }
  shown > 0 && count <= 10 { print; shown-- }')
if [ -n "$failures" ]; then
  printf '\nFailed tests (each with the first lines of its error):\n%s\n' "$failures"
fi
plain | awk '
  /^ *(@[^ ]+: +)?Tests +[0-9]/ {
    for (i = 1; i <= NF; i++) {
      if ($(i + 1) ~ /^passed/) passed += $i
      if ($(i + 1) ~ /^failed/) failed += $i
    }
  }
  END { printf "Tests: %d passed, %d failed\n", passed, failed }'
exit "$status"
