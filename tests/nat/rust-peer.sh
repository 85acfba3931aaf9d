#!/usr/bin/env bash
# The Rust side of a NAT-lab connection, with the arguments of js/nat-peer.js: runs the `nat_peer`
# test of the test binary named by $P2PSWARM_NAT_EXE (a core/tests/nat_*.rs binary), which
# reads its arguments from P2PSWARM_NAT_PEER_ARGS.
set -u
: "${P2PSWARM_NAT_EXE:?set P2PSWARM_NAT_EXE to a nat test binary}"
export P2PSWARM_NAT_PEER_ARGS="$*"
exec "$P2PSWARM_NAT_EXE" --exact nat_peer --nocapture --test-threads 1 --quiet
