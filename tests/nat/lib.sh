# Shared by the scripts that run inside a lab built by lab.sh (cell.sh, relay-cell.sh,
# limiter.sh): sourced after they set HERE. Gives a temporary directory DIR for the peers'
# output, PIDS (every process started; all are ended on exit, NAT_KEEP_LOGS=1 keeps DIR),
# wait_line, and helpers that start the bootstrap nodes and a server and report a client.
: "${NAT_LAB_PUB:?run me through lab.sh}"
SERVER_CMD="${NAT_SERVER_CMD:-node $HERE/js/nat-peer.js}"
CLIENT_CMD="${NAT_CLIENT_CMD:-node $HERE/js/nat-peer.js}"
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

# start_boot TIMEOUT_MS [DELAY_MS]: the JS bootstrap nodes in the public namespace; sets BOOT.
# Returns 1 (their output in $DIR/boot) if they are not ready within 30 s.
start_boot() {
  ip netns exec "$NAT_LAB_PUB" node "$HERE/js/lab-boot.js" --host "$NAT_LAB_BOOT_HOST" \
    ${2:+--delay-ms "$2"} --timeout-ms "$1" </dev/null >"$DIR/boot" 2>&1 &
  PIDS+=($!)
  wait_line "$DIR/boot" '^ready' 30 || return 1
  BOOT="$(sed -n 's/^ready //p' "$DIR/boot" | head -1)"
}

# start_server SEED ARGS...: the server role in the server site; sets PK. Returns 1 if it does
# not listen within 40 s.
start_server() {
  local seed="$1"
  shift
  ip netns exec "$NAT_LAB_SERVER" $SERVER_CMD server --bootstrap "$BOOT" --seed "$seed" "$@" \
    >"$DIR/server" 2>"$DIR/server.err" &
  PIDS+=($!)
  wait_line "$DIR/server" '^listening' 40 || return 1
  PK="$(sed -n 's/^listening \([0-9a-f]*\).*/\1/p' "$DIR/server" | head -1)"
}

# client_result FILE [PREFIX]: `<path> <ms> <open line>` for a client that opened and finished,
# else `failed:<CODE> <ms> <error line>`, from the client's output FILE.
client_result() {
  local open err ms
  open="$(grep '^open ' "$1" | head -1)"
  err="$(grep '^error ' "$1" | head -1)"
  if [ -n "$open" ] && grep -q '^done ' "$1"; then
    ms="$(sed -n 's/.*ms=\([0-9]*\).*/\1/p' <<<"$open")"
    echo "$(sed -n 's/.*path=\([a-z]*\).*/\1/p' <<<"$open") $ms ${open#open } | $(grep '^done ' "$1" | head -1)"
  else
    ms="$(sed -n 's/.*ms=\([0-9]*\).*/\1/p' <<<"$err")"
    echo "failed:$(awk '{print $2}' <<<"$err" | grep . || echo NONE) ${ms:-0} ${err:-no output} ${open}"
  fi
}
