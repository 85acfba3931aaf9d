#!/usr/bin/env bash
# Random-punch limiter scenario inside a lab built by lab.sh (run as its CMD; use a random-NAT
# server site and a consistent client site). Starts bootstrap nodes and one server (accepting up
# to 3 connections), then three clients one after another from the client site, each a fresh
# process with its own key: A, B right after A opened, and C after waiting NAT_LIMITER_WAIT_S
# (default 21) seconds. Prints `RESULT A|B|C <outcome> <ms> <detail>` per client.
# Peers: NAT_SERVER_CMD / NAT_CLIENT_CMD as in cell.sh.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/lib.sh"
WAIT="${NAT_LIMITER_WAIT_S:-21}"
start_boot 300000 || { echo "RESULT A failed:BOOT 0"; exit 1; }
start_server "$(printf '5e%.0s' {1..32})" --bytes 1024 --connections 3 --timeout-ms 240000 ||
  { echo "RESULT A failed:SERVER_LISTEN 0"; exit 1; }
client() { # name seed-byte
  ip netns exec "$NAT_LAB_CLIENT" $CLIENT_CMD client --bootstrap "$BOOT" --seed "$(printf "$2%.0s" {1..32})" \
    --connect "$PK" --bytes 1024 --timeout-ms 60000 >"$DIR/$1" 2>"$DIR/$1.err"
  echo "RESULT $1 $(client_result "$DIR/$1")"
}
client A a1
client B b2
sleep "$WAIT"
client C c3
