#!/usr/bin/env bash
# Node benchmark: the p2pswarm addon vs JS hyperswarm 4.17 between two Node processes
# (throughput and memory per connection, with ratios), inside a fresh network namespace when
# run as root. Builds the addon (release) if missing. Arguments go to bench/node-bench.js
# (--mib N, --runs N, --conns N). Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d tests/interop/js/node_modules/hyperswarm ] || (cd tests/interop/js && npm ci --no-audit --no-fund)
[ -f bindings/node/p2pswarm.node ] || (cd bindings/node && npm install --no-audit --no-fund)
if [ "$(id -u)" = 0 ]; then exec tests/interop/netns.sh -- node bench/node-bench.js "$@"; fi
exec node bench/node-bench.js "$@"
