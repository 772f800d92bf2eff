#!/usr/bin/env bash
# The whole test suite: what README.md's test command and .ci/run run.
# Builds, runs the Rust tests, installs the conformance suite's dependencies (npm ci) and runs it
# against the Rust testbed and the Node reference testbed, then a short fuzz smoke run of every
# decoder (stable toolchain, libFuzzer with sanitizer coverage; no nightly needed).
# Fails loudly when a tool is missing; never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "test: missing required tool '$1' ($2)" >&2; exit 1; }
}
need cargo "the Rust toolchain"
need node "Node.js 20, for the conformance suite"
need npm "npm, for the conformance suite"
need c++ "a C++ compiler, for libFuzzer in the fuzz smoke run"
need redis-server "Debian's redis-server, for the Redis adapter tests (they start their own instances)"
need redis-cli "Debian's redis-cli, to form the small Redis Cluster of the sharded adapter test"
# The browser test (server/test/browser.test.mjs) drives Debian's Chromium: install it when we
# can (root), else stop and say what to install.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "test: installing Debian's chromium for the browser test" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }
  else
    echo "test: missing /usr/bin/chromium, for the browser test: run 'apt-get install -y chromium' as root (Debian's package)" >&2
    exit 1
  fi
fi

step() { printf '\n== %s\n' "$*"; }

step "cargo build --release (testbed, emitter)"
cargo build --release -p conformance --bin testbed --bin emitter

step "cargo test --workspace"
cargo test --workspace

step "sockeye end to end with the official client"
(cd server && npm ci --no-audit --no-fund && npm test)

step "npm ci (conformance)"
(cd conformance && npm ci --no-audit --no-fund)
for target in rust node; do
  step "conformance suite against the $target testbed"
  TESTBED=$target ./conformance/run-tests.sh
done
step "fuzz smoke run (every decoder, ${FUZZ_SECONDS:-15} s each)"
./scripts/fuzz-smoke.sh

echo
echo "test: all passed"
