#!/usr/bin/env bash
# Fuzz smoke run: builds every target in fuzz/ (Engine.IO and Socket.IO codecs, Redis adapter
# messages, JWT-bearing CONNECT; see fuzz/README.md) and runs each for a short while over its
# seed corpus. scripts/fuzz-long.sh runs the same build for longer, one target at a time.
# Needs only the stable toolchain and a C++ compiler (libfuzzer-sys builds libFuzzer): no
# nightly, no cargo-fuzz. The targets are built with the sanitizer-coverage flags cargo-fuzz
# passes, minus the `-Z` ones (so no AddressSanitizer: the decoders are safe Rust, and a panic or
# a failed assert is what the targets catch).
#
#   FUZZ_SECONDS  seconds per target (default 15)
#   FUZZ_JOBS     targets run at once (default: the number of CPUs, at most the targets)
#   FUZZ_TARGETS  space-separated subset of targets (default: every fuzz/fuzz_targets/*.rs)
#
# Layout (fuzz/corpus, fuzz/artifacts and fuzz/target are gitignored):
#   fuzz/seeds/<target>/      committed seeds, never written by a run
#   fuzz/corpus/<target>/     scratch corpus: the seeds are copied in, libFuzzer adds to it
#   fuzz/artifacts/<target>/  crashing inputs, and the run's log (fuzz.log)
#
# Exits non-zero if the build fails or any target crashes (panic, failed assert, timeout, out of
# memory), after printing each crashing input's path and how to reproduce it.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "fuzz-smoke: missing required tool '$1' ($2)" >&2; exit 1; }
}
need cargo "the Rust toolchain"
need rustc "the Rust toolchain"
need "${CXX:-c++}" "a C++ compiler, to build libFuzzer (set CXX to use another)"

seconds=${FUZZ_SECONDS:-15}
# (0 would mean "no limit" to libFuzzer.)
case $seconds in '' | *[!0-9]* | 0) echo "fuzz-smoke: FUZZ_SECONDS must be a positive number" >&2; exit 1 ;; esac

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do
    t=${f##*/}
    targets+=("${t%.rs}")
  done
fi
for t in "${targets[@]}"; do
  [ -f "fuzz/fuzz_targets/$t.rs" ] || { echo "fuzz-smoke: no target '$t'" >&2; exit 1; }
  # Every target needs seeds: a run from nothing finds little in 15 seconds.
  compgen -G "fuzz/seeds/$t/*" >/dev/null || { echo "fuzz-smoke: no seeds in fuzz/seeds/$t/" >&2; exit 1; }
done

jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
((jobs >= 1)) || jobs=1
((jobs <= ${#targets[@]})) || jobs=${#targets[@]}

# With an explicit --target, RUSTFLAGS reach only the target's crates, not build scripts and
# proc macros (which would not link without libFuzzer's coverage callbacks).
host=$(rustc -vV | sed -n 's/^host: //p')
[ -n "$host" ] || { echo "fuzz-smoke: cannot read the host triple from rustc -vV" >&2; exit 1; }

flags=(
  --cfg fuzzing
  -Cpasses=sancov-module
  -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
  -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares
  -Cdebug-assertions
  -Coverflow-checks
)
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done

printf '== fuzz-smoke: build %s (%s)\n' "${targets[*]}" "$host"
start=$SECONDS
unset CARGO_ENCODED_RUSTFLAGS
RUSTFLAGS="${flags[*]}" cargo build --manifest-path fuzz/Cargo.toml --target-dir fuzz/target \
  --target "$host" --release "${bins[@]}"
echo "fuzz-smoke: built in $((SECONDS - start))s"

out=fuzz/target/$host/release

run() {
  local t=$1 dir=fuzz/artifacts/$1
  mkdir -p "fuzz/corpus/$t" "$dir"
  cp fuzz/seeds/"$t"/* "fuzz/corpus/$t/"
  # -timeout: one input running that long counts as a crash (a hang).
  "$out/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 \
    -artifact_prefix="$dir/" -print_final_stats=1 "fuzz/corpus/$t" >"$dir/fuzz.log" 2>&1
}

report() {
  local t=$1 rc=$2 log=fuzz/artifacts/$1/fuzz.log
  if [ "$rc" = 0 ]; then
    printf 'fuzz-smoke: %-20s ok   %s\n' "$t" "$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)"
    return 0
  fi
  printf '\n== fuzz-smoke: %s FAILED (exit %s); end of %s:\n' "$t" "$rc" "$log"
  tail -n 40 "$log"
  local input
  input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  if [ -n "$input" ]; then
    echo "fuzz-smoke: $t: crashing input: $input"
    echo "fuzz-smoke: reproduce: $out/$t $input"
  else
    echo "fuzz-smoke: $t: no crashing input written (see $log)"
  fi
  return 1
}

printf '== fuzz-smoke: run %d targets, %ss each, %d at a time\n' "${#targets[@]}" "$seconds" "$jobs"
start=$SECONDS
# `jobs` lanes, each running its share of the targets in turn and leaving each exit code in
# fuzz/artifacts/<target>/rc.
lane() {
  local i rc
  for ((i = $1; i < ${#targets[@]}; i += jobs)); do
    rc=0
    run "${targets[i]}" || rc=$?
    echo "$rc" >"fuzz/artifacts/${targets[i]}/rc"
  done
}
for t in "${targets[@]}"; do rm -f "fuzz/artifacts/$t/rc"; done
lanes=()
for ((l = 0; l < jobs; l++)); do
  lane "$l" &
  lanes+=($!)
done
for pid in "${lanes[@]}"; do wait "$pid" || true; done
failed=()
for t in "${targets[@]}"; do
  rc=$(cat "fuzz/artifacts/$t/rc" 2>/dev/null || echo "none")
  report "$t" "$rc" || failed+=("$t")
done
echo "fuzz-smoke: ran in $((SECONDS - start))s"

if ((${#failed[@]} > 0)); then
  echo "fuzz-smoke: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz-smoke: all ${#targets[@]} targets ran clean"
