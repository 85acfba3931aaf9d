#!/usr/bin/env bash
# Swarm benchmark (join → connection latency, memory of a hub swarm holding 50 connections; Rust
# vs JS hyperswarm 4.17), inside a fresh network namespace when run as root. Honours
# CARGO_TARGET_DIR. Not part of the test suite. Arguments go to bench/swarm-bench.js
# (--runs N, --conns N, --clients matched|rust|js).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d tests/interop/js/node_modules/hyperswarm ] || (cd tests/interop/js && npm ci --no-audit --no-fund)
cargo build --release -q -p p2pswarm-bench --bin swarm-bench
cargo build --release -q -p p2pswarm-cli
if [ "$(id -u)" = 0 ]; then exec tests/interop/netns.sh -- node bench/swarm-bench.js "$@"; fi
exec node bench/swarm-bench.js "$@"
