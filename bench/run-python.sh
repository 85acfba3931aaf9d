#!/usr/bin/env bash
# Python binding throughput: a 256 MiB transfer between two Python processes (p2pswarm package),
# as a ratio to the same transfer between two Rust processes (transfer-bench) in the same run,
# on a loopback testnet (inside a fresh network namespace when run as root). Not part of the
# test suite. Honours CARGO_TARGET_DIR. Besides throughput it prints the CPU seconds each side
# spent on the transfer (all threads of the process), which hardly depends on other load.
#
#   bench/run-python.sh [MiB=256] [runs=5]
#   P2PSWARM_BENCH_RT=1 bench/run-python.sh   # as root: run the pairs with SCHED_FIFO priority 1
#                                             # (chrt), so that other builds on a shared machine
#                                             # disturb the comparison less (approximates idle)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mib=${1:-256}
runs=${2:-5}
cargo build --release -q -p p2pswarm-bench --bin transfer-bench
bin="${CARGO_TARGET_DIR:-$root/target}/release/transfer-bench"
venv="$root/bindings/python/target/bench-venv"
if [ ! -x "$venv/bin/python" ] || [ "${P2PSWARM_BENCH_REINSTALL:-1}" = 1 ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip --disable-pip-version-check -q install "$root/bindings/python"
fi
cmd=("$venv/bin/python" "$root/bench/run_python_bench.py" "$bin" "$mib" "$runs")
rt=()
if [ "${P2PSWARM_BENCH_RT:-0}" = 1 ]; then rt=(chrt -f 1); fi
if [ "$(id -u)" = 0 ]; then exec "${rt[@]}" tests/interop/netns.sh -- "${cmd[@]}"; fi
exec "${rt[@]}" "${cmd[@]}"
