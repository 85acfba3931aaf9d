#!/usr/bin/env bash
# One connection attempt through a blind relay inside a lab built by lab.sh (run as its CMD):
# like cell.sh, plus a Rust blind-relay server (the `nat_relay` test of $P2PSWARM_NAT_EXE) on a
# persistent DHT node in the public namespace; the client is given `--relay PK`. Prints
#   RELAY <relay line>
#   RESULT <outcome> <ms> <detail>
# (outcome as cell.sh: direct | punched | failed:<CODE>; the detail has the client's
# `remote=HOST:PORT`, to compare with the relay's address).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/lib.sh"
: "${P2PSWARM_NAT_EXE:?set P2PSWARM_NAT_EXE to a nat test binary}"
TMO="${NAT_CELL_TIMEOUT_MS:-45000}"
BYTES="${NAT_CELL_BYTES:-65536}"

start_boot $((TMO + 120000)) 5 || { echo "RESULT failed:BOOT 0 $(head -c 200 "$DIR/boot")"; exit 1; }
P2PSWARM_NAT_RELAY_ARGS="--bootstrap $BOOT --host $NAT_LAB_BOOT_HOST --timeout-ms $((TMO + 60000))" \
  ip netns exec "$NAT_LAB_PUB" "$P2PSWARM_NAT_EXE" --exact nat_relay --nocapture --test-threads 1 \
  --quiet </dev/null >"$DIR/relay" 2>"$DIR/relay.err" &
PIDS+=($!)
wait_line "$DIR/relay" '^relay ' 40 || { echo "RESULT failed:RELAY 0 $(tr '\n' ' ' <"$DIR/relay.err" | head -c 300)"; exit 1; }
RELAY_LINE="$(grep '^relay ' "$DIR/relay" | head -1)"
RELAY_PK="$(awk '{print $2}' <<<"$RELAY_LINE")"
echo "RELAY $RELAY_LINE"
SEED=$(printf '%02x' $((RANDOM % 180 + 16)))
SEED=$(printf "$SEED%.0s" {1..32})
start_server "$SEED" --bytes "$BYTES" --timeout-ms $((TMO + 30000)) ||
  { echo "RESULT failed:SERVER_LISTEN 0 $(tr '\n' ' ' <"$DIR/server" | head -c 300)"; exit 1; }
CSEED=$(printf 'c%.0s' {1..64})
ip netns exec "$NAT_LAB_CLIENT" $CLIENT_CMD client --bootstrap "$BOOT" --seed "$CSEED" --connect "$PK" \
  --bytes "$BYTES" --timeout-ms "$TMO" --relay "$RELAY_PK" >"$DIR/client" 2>"$DIR/client.err" &
CP=$!
PIDS+=($CP)
wait "$CP"
sleep 0.5
echo "RELAYLOG $(grep -v '^relay ' "$DIR/relay" | tr '\n' ' ' | head -c 300)"
echo "RESULT $(client_result "$DIR/client") | server: $(grep -h '^connection\|^listening\|^done\|^error' "$DIR/server" | tr '\n' ' ' | head -c 300)"
