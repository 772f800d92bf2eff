#!/usr/bin/env bash
# Long fuzz run: every target in fuzz/ (or FUZZ_TARGETS), one after the other, SECONDS each
# (default 600), through scripts/fuzz-smoke.sh (same stable build, same corpus and artifact
# layout). Prints the executions and coverage of each target and exits non-zero if any crashed.
#
#   scripts/fuzz-long.sh [SECONDS]
#   FUZZ_TARGETS  space-separated subset of targets (default: every fuzz/fuzz_targets/*.rs)
#   FUZZ_JOBS     targets run at once (default 1: a long run should not starve the machine)
#
# Run it under `nice -n 19` on a shared machine. The corpus in fuzz/corpus/ grows from run to
# run; delete it to start again from the seeds.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
case $seconds in '' | *[!0-9]* | 0) echo "fuzz-long: SECONDS must be a positive number" >&2; exit 1 ;; esac

rc=0
FUZZ_SECONDS=$seconds FUZZ_JOBS=${FUZZ_JOBS:-1} ./scripts/fuzz-smoke.sh || rc=$?

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do
    t=${f##*/}
    targets+=("${t%.rs}")
  done
fi

echo
printf '== fuzz-long: %ss per target\n' "$seconds"
printf '%-22s %-6s %14s %10s %8s %8s\n' target result executions exec/s cov corpus
for t in "${targets[@]}"; do
  log=fuzz/artifacts/$t/fuzz.log
  [ -f "$log" ] || { printf '%-22s %-6s\n' "$t" "no log"; continue; }
  result=crash
  [ "$(cat "fuzz/artifacts/$t/rc" 2>/dev/null)" = 0 ] && result=ok
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  # The last status line: "#N  DONE  cov: C ft: F corp: K/..." (or the last pulse before a crash).
  status=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$status")
  printf '%-22s %-6s %14s %10s %8s %8s\n' "$t" "$result" "${execs:-?}" "${speed:-?}" "${cov:-?}" "${corp:-?}"
done
exit "$rc"
