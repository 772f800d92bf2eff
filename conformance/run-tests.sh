#!/bin/sh
# Run the conformance tests (node:test) against a testbed.
#
#   TESTBED=rust (default)  the Rust testbed: $TESTBED_BIN or <repo>/target/release/testbed
#                           (cargo build --release -p conformance --bin testbed)
#   TESTBED=node            the Node reference testbed, conformance/node/testbed.mjs
#
# Usage: conformance/run-tests.sh [test files, relative to conformance/]   (default: test/*.test.mjs)
# Files run one after the other; the exit status is non-zero if any test fails.
set -eu

# a relative TESTBED_BIN is relative to the caller's directory
if [ -n "${TESTBED_BIN:-}" ]; then
  case "$TESTBED_BIN" in
    /*) ;;
    *) TESTBED_BIN="$(pwd)/$TESTBED_BIN" ;;
  esac
  export TESTBED_BIN
fi

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
cd "$here"

TESTBED=${TESTBED:-rust}
export TESTBED

case "$TESTBED" in
  node) ;;
  rust)
    bin=${TESTBED_BIN:-../target/release/testbed}
    if [ ! -x "$bin" ]; then
      echo "run-tests.sh: Rust testbed not found at $bin" >&2
      echo "  build it: cargo build --release -p conformance --bin testbed (or set TESTBED_BIN, or TESTBED=node)" >&2
      exit 1
    fi
    ;;
  *)
    echo "run-tests.sh: TESTBED must be rust or node, got '$TESTBED'" >&2
    exit 1
    ;;
esac

if [ ! -d node_modules ]; then
  echo "run-tests.sh: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi

if [ "$#" -eq 0 ]; then
  set -- test/*.test.mjs
fi

echo "run-tests.sh: running $# test file(s) against the $TESTBED testbed" >&2
exec node --test --test-concurrency=1 "$@"
