#!/usr/bin/env bash
# Two copies of the C chat example talk through a testnet started by the first one:
# a line typed into each arrives at the other. Usage: chat-e2e.sh PATH/TO/chat
set -euo pipefail
chat=$1
dir=$(mktemp -d)
pids=()
cleanup() {
  exec 3>&- 4>&- || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
mkfifo "$dir/a.in" "$dir/b.in"
"$chat" --testnet 4 --seed-byte 1 chat-e2e <"$dir/a.in" >"$dir/a.out" 2>"$dir/a.err" &
pids+=($!)
exec 3>"$dir/a.in"
wait_for() { # file pattern
  for _ in $(seq 1 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1:" >&2
  cat "$1" >&2
  return 1
}
wait_for "$dir/a.err" "joined as"
boot=$(sed -n 's/^\* testnet bootstrap //p' "$dir/a.err")
"$chat" --bootstrap "$boot" --seed-byte 2 chat-e2e <"$dir/b.in" >"$dir/b.out" 2>"$dir/b.err" &
pids+=($!)
exec 4>"$dir/b.in"
wait_for "$dir/b.err" "connected to"
wait_for "$dir/a.err" "connected to"
echo "hello from a" >&3
echo "hello from b" >&4
wait_for "$dir/b.out" "hello from a"
wait_for "$dir/a.out" "hello from b"
exec 4>&- # b's stdin ends: it ends its connection and exits
wait "${pids[1]}"
wait_for "$dir/a.err" "connection closed"
exec 3>&-
wait "${pids[0]}"
pids=()
echo "chat example: two peers exchanged lines"
