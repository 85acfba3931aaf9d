#!/usr/bin/env bash
# One connection attempt inside a lab built by lab.sh (run as its CMD). Starts the bootstrap nodes
# in the public namespace, a server in the server site, a client in the client site; prints one line
#   RESULT <outcome> <ms> <detail>
# outcome: direct | punched | failed:<CODE>; ms: client time from connect() to open (or failure).
# Peers default to the JS fixture; override with NAT_SERVER_CMD / NAT_CLIENT_CMD (a command taking
# the arguments of js/nat-peer.js). NAT_CELL_TIMEOUT_MS bounds the client (default 45000).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/lib.sh"
TMO="${NAT_CELL_TIMEOUT_MS:-45000}"
BYTES="${NAT_CELL_BYTES:-65536}"
DELAY="${NAT_BOOT_DELAY_MS:-5}"

start_boot $((TMO + 120000)) "$DELAY" || { echo "RESULT failed:BOOT 0 $(head -c 200 "$DIR/boot")"; exit 1; }
SEED=$(printf '%02x' $((RANDOM % 180 + 16)))  # never cc (the client's seed)
SEED=$(printf "$SEED%.0s" {1..32})
start_server "$SEED" --bytes "$BYTES" --timeout-ms $((TMO + 30000)) ||
  { echo "RESULT failed:SERVER_LISTEN 0 $(tr '\n' ' ' <"$DIR/server" | head -c 300)"; exit 1; }
CSEED=$(printf 'c%.0s' {1..64})
ip netns exec "$NAT_LAB_CLIENT" $CLIENT_CMD client --bootstrap "$BOOT" --seed "$CSEED" --connect "$PK" \
  --bytes "$BYTES" --timeout-ms "$TMO" >"$DIR/client" 2>"$DIR/client.err" &
CP=$!
PIDS+=($CP)
wait "$CP"
echo "RESULT $(client_result "$DIR/client") | server: $(grep -h '^connection\|^listening' "$DIR/server" | tr '\n' ' ' | head -c 300)"
