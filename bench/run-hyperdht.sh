#!/usr/bin/env bash
# HyperDHT benchmark (connect latency, stream throughput, idle memory; Rust vs JS hyperdht 6.34),
# inside a fresh network namespace when run as root. Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d tests/interop/js/node_modules/hyperdht ] || (cd tests/interop/js && npm ci --no-audit --no-fund)
cargo build --release -q -p p2pswarm-bench --bin hyperdht-bench
cargo build --release -q -p p2pswarm-cli
if [ "$(id -u)" = 0 ]; then exec tests/interop/netns.sh -- node bench/hyperdht-bench.js "$@"; fi
exec node bench/hyperdht-bench.js "$@"
