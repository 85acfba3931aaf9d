#!/usr/bin/env bash
# One connection attempt inside a lab built by lab.sh (run as its CMD). Starts the bootstrap nodes
# in the public namespace, a server in the server site, a client in the client site; prints one line
#   RESULT <outcome> <ms> <detail>
# outcome: direct | punched | failed:<CODE>; ms: client time from connect() to open (or failure).
# Peers default to the JS fixture; override with NAT_SERVER_CMD / NAT_CLIENT_CMD (a command taking
# the arguments of js/nat-peer.js). NAT_CELL_TIMEOUT_MS bounds the client (default 45000).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
: "${NAT_LAB_PUB:?run me through lab.sh}"
SERVER_CMD="${NAT_SERVER_CMD:-node $HERE/js/nat-peer.js}"
CLIENT_CMD="${NAT_CLIENT_CMD:-node $HERE/js/nat-peer.js}"
TMO="${NAT_CELL_TIMEOUT_MS:-45000}"
BYTES="${NAT_CELL_BYTES:-65536}"
DELAY="${NAT_BOOT_DELAY_MS:-5}"
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
  --delay-ms "$DELAY" --timeout-ms $((TMO + 120000)) </dev/null >"$DIR/boot" 2>&1 &
PIDS+=($!)
wait_line "$DIR/boot" '^ready' 30 || { echo "RESULT failed:BOOT 0 $(head -c 200 "$DIR/boot")"; exit 1; }
BOOT="$(sed -n 's/^ready //p' "$DIR/boot" | head -1)"
SEED=$(printf '%02x' $((RANDOM % 180 + 16)))  # never cc (the client's seed)
SEED=$(printf "$SEED%.0s" {1..32})
ip netns exec "$NAT_LAB_SERVER" $SERVER_CMD server --bootstrap "$BOOT" --seed "$SEED" --bytes "$BYTES" \
  --timeout-ms $((TMO + 30000)) >"$DIR/server" 2>"$DIR/server.err" &
PIDS+=($!)
wait_line "$DIR/server" '^listening' 40 || { echo "RESULT failed:SERVER_LISTEN 0 $(tr '\n' ' ' <"$DIR/server" | head -c 300)"; exit 1; }
PK="$(sed -n 's/^listening \([0-9a-f]*\).*/\1/p' "$DIR/server" | head -1)"
CSEED=$(printf 'c%.0s' {1..64})
ip netns exec "$NAT_LAB_CLIENT" $CLIENT_CMD client --bootstrap "$BOOT" --seed "$CSEED" --connect "$PK" \
  --bytes "$BYTES" --timeout-ms "$TMO" >"$DIR/client" 2>"$DIR/client.err" &
CP=$!
PIDS+=($CP)
wait "$CP"
open="$(grep '^open ' "$DIR/client" | head -1)"
done_="$(grep '^done ' "$DIR/client" | head -1)"
err="$(grep '^error ' "$DIR/client" | head -1)"
if [ -n "$open" ] && [ -n "$done_" ]; then
  ms="$(sed -n 's/.*ms=\([0-9]*\).*/\1/p' <<<"$open")"
  p="$(sed -n 's/.*path=\([a-z]*\).*/\1/p' <<<"$open")"
  echo "RESULT $p $ms ${open#open } | $done_ | server: $(grep -h '^connection\|^listening' "$DIR/server" | tr '\n' ' ')"
else
  code="$(awk '{print $2}' <<<"$err")"
  ms="$(sed -n 's/.*ms=\([0-9]*\).*/\1/p' <<<"$err")"
  echo "RESULT failed:${code:-NONE} ${ms:-0} ${err:-no output} ${open} | server: $(tr '\n' ' ' <"$DIR/server" | head -c 300)"
fi
