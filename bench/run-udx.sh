#!/usr/bin/env bash
# Builds the Rust UDX peer in release mode and runs the UDX throughput benchmark against
# udx-native (installs the pinned JS stack if needed). Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d tests/interop/js/node_modules/udx-native ] || (cd tests/interop/js && npm ci --no-audit --no-fund)
cargo build --release -p p2pswarm-bench --bin udx-peer
exec node bench/udx-bench.js "$@"
