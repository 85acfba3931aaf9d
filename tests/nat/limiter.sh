#!/usr/bin/env bash
# Random-punch limiter scenario inside a lab built by lab.sh (run as its CMD; use a random-NAT
# server site and a consistent client site). Starts bootstrap nodes and one server (accepting up
# to 3 connections), then three clients one after another from the client site, each a fresh
# process with its own key: A, B right after A opened, and C after waiting NAT_LIMITER_WAIT_S
# (default 21) seconds. Prints `RESULT A|B|C <outcome> <ms> <detail>` per client.
# Peers: NAT_SERVER_CMD / NAT_CLIENT_CMD as in cell.sh.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
: "${NAT_LAB_PUB:?run me through lab.sh}"
SERVER_CMD="${NAT_SERVER_CMD:-node $HERE/js/nat-peer.js}"
CLIENT_CMD="${NAT_CLIENT_CMD:-node $HERE/js/nat-peer.js}"
WAIT="${NAT_LIMITER_WAIT_S:-21}"
DIR="$(mktemp -d)"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.2
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$DIR"
}
trap cleanup EXIT
wait_line() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
ip netns exec "$NAT_LAB_PUB" node "$HERE/js/lab-boot.js" --host "$NAT_LAB_BOOT_HOST" \
  --timeout-ms 300000 </dev/null >"$DIR/boot" 2>&1 &
PIDS+=($!)
wait_line "$DIR/boot" '^ready' 30 || { echo "RESULT A failed:BOOT 0"; exit 1; }
BOOT="$(sed -n 's/^ready //p' "$DIR/boot" | head -1)"
SEED=$(printf '5e%.0s' {1..32})
ip netns exec "$NAT_LAB_SERVER" $SERVER_CMD server --bootstrap "$BOOT" --seed "$SEED" --bytes 1024 \
  --connections 3 --timeout-ms 240000 >"$DIR/server" 2>"$DIR/server.err" &
PIDS+=($!)
wait_line "$DIR/server" '^listening' 40 || { echo "RESULT A failed:SERVER_LISTEN 0"; exit 1; }
PK="$(sed -n 's/^listening \([0-9a-f]*\).*/\1/p' "$DIR/server" | head -1)"
client() { # name seed-byte
  local s
  s=$(printf "$2%.0s" {1..32})
  ip netns exec "$NAT_LAB_CLIENT" $CLIENT_CMD client --bootstrap "$BOOT" --seed "$s" --connect "$PK" \
    --bytes 1024 --timeout-ms 60000 >"$DIR/$1" 2>"$DIR/$1.err"
  local open err ms
  open="$(grep '^open ' "$DIR/$1" | head -1)"
  err="$(grep '^error ' "$DIR/$1" | head -1)"
  if [ -n "$open" ] && grep -q '^done ' "$DIR/$1"; then
    ms="$(sed -n 's/.*ms=\([0-9]*\).*/\1/p' <<<"$open")"
    echo "RESULT $1 $(sed -n 's/.*path=\([a-z]*\).*/\1/p' <<<"$open") $ms ${open#open }"
  else
    ms="$(sed -n 's/.*ms=\([0-9]*\).*/\1/p' <<<"$err")"
    echo "RESULT $1 failed:$(awk '{print $2}' <<<"$err") ${ms:-0} ${err:-no output}"
  fi
}
client A a1
client B b2
sleep "$WAIT"
client C c3
