#!/usr/bin/env bash
# DHT benchmark: lookup latency and memory per node on a 100-node loopback network, Rust vs JS
# dht-rpc 6.27, measured in one run and printed as ratios. Runs inside a fresh network namespace
# when possible (root), else on the host's loopback. Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d tests/interop/js/node_modules/dht-rpc ] || (cd tests/interop/js && npm ci --no-audit --no-fund)
cargo build --release -q -p p2pswarm-bench --bin dht-bench
run() { if [ "$(id -u)" = 0 ]; then tests/interop/netns.sh -- "$@"; else "$@"; fi; }
rust=$(run target/release/dht-bench "$@")
js=$(run node --expose-gc bench/dht-bench-js.js "$@")
node -e '
const r = JSON.parse(process.argv[1]), j = JSON.parse(process.argv[2])
const row = (x) => `  ${x.impl.padEnd(5)} ${x.nodes} nodes (${x.persistent} persistent): lookup p50 ${x.p50_ms.toFixed(2)} ms, p90 ${x.p90_ms.toFixed(2)} ms, mean ${x.mean_ms.toFixed(2)} ms; ${x.kib_per_node.toFixed(0)} KiB/node`
console.log("DHT, " + r.lookups + " FIND_NODE lookups on a loopback network")
console.log(row(r)); console.log(row(j))
console.log(`ratio Rust/JS: lookup p50 ${(r.p50_ms / j.p50_ms).toFixed(2)}x, mean ${(r.mean_ms / j.mean_ms).toFixed(2)}x (target <= 1); memory per node ${(r.kib_per_node / j.kib_per_node).toFixed(2)}x (target <= 0.25)`)
' "$rust" "$js"
