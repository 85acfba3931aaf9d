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
: "${NAT_LAB_PUB:?run me through lab.sh}"
: "${P2PSWARM_NAT_EXE:?set P2PSWARM_NAT_EXE to a nat test binary}"
SERVER_CMD="${NAT_SERVER_CMD:-node $HERE/js/nat-peer.js}"
CLIENT_CMD="${NAT_CLIENT_CMD:-node $HERE/js/nat-peer.js}"
TMO="${NAT_CELL_TIMEOUT_MS:-45000}"
BYTES="${NAT_CELL_BYTES:-65536}"
DIR="$(mktemp -d)"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.2
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ -n "${NAT_KEEP_LOGS:-}" ] && { echo "logs in $DIR" >&2; return; }
  rm -rf "$DIR"
}
trap cleanup EXIT

wait_line() { # file pattern timeout-s
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

ip netns exec "$NAT_LAB_PUB" node "$HERE/js/lab-boot.js" --host "$NAT_LAB_BOOT_HOST" \
  --delay-ms 5 --timeout-ms $((TMO + 120000)) </dev/null >"$DIR/boot" 2>&1 &
PIDS+=($!)
wait_line "$DIR/boot" '^ready' 30 || { echo "RESULT failed:BOOT 0 $(head -c 200 "$DIR/boot")"; exit 1; }
BOOT="$(sed -n 's/^ready //p' "$DIR/boot" | head -1)"
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
ip netns exec "$NAT_LAB_SERVER" $SERVER_CMD server --bootstrap "$BOOT" --seed "$SEED" --bytes "$BYTES" \
  --timeout-ms $((TMO + 30000)) >"$DIR/server" 2>"$DIR/server.err" &
PIDS+=($!)
wait_line "$DIR/server" '^listening' 40 || { echo "RESULT failed:SERVER_LISTEN 0 $(tr '\n' ' ' <"$DIR/server" | head -c 300)"; exit 1; }
PK="$(sed -n 's/^listening \([0-9a-f]*\).*/\1/p' "$DIR/server" | head -1)"
CSEED=$(printf 'c%.0s' {1..64})
ip netns exec "$NAT_LAB_CLIENT" $CLIENT_CMD client --bootstrap "$BOOT" --seed "$CSEED" --connect "$PK" \
  --bytes "$BYTES" --timeout-ms "$TMO" --relay "$RELAY_PK" >"$DIR/client" 2>"$DIR/client.err" &
CP=$!
PIDS+=($CP)
wait "$CP"
sleep 0.5
open="$(grep '^open ' "$DIR/client" | head -1)"
done_="$(grep '^done ' "$DIR/client" | head -1)"
err="$(grep '^error ' "$DIR/client" | head -1)"
echo "RELAYLOG $(grep -v '^relay ' "$DIR/relay" | tr '\n' ' ' | head -c 300)"
if [ -n "$open" ] && [ -n "$done_" ]; then
  ms="$(sed -n 's/.*ms=\([0-9]*\).*/\1/p' <<<"$open")"
  p="$(sed -n 's/.*path=\([a-z]*\).*/\1/p' <<<"$open")"
  echo "RESULT $p $ms ${open#open } | $done_ | server: $(grep -h '^connection\|^listening\|^done\|^error' "$DIR/server" | tr '\n' ' ')"
else
  code="$(awk '{print $2}' <<<"$err")"
  ms="$(sed -n 's/.*ms=\([0-9]*\).*/\1/p' <<<"$err")"
  echo "RESULT failed:${code:-NONE} ${ms:-0} ${err:-no output} ${open} | server: $(tr '\n' ' ' <"$DIR/server" | head -c 300)"
fi
