#!/usr/bin/env bash
# Run one command inside a fresh, private network namespace (only `lo`), optionally dropping a
# percentage of incoming UDP packets with nftables. The namespace is always deleted afterwards.
#
#   tests/interop/netns.sh [--loss PCT] -- CMD ARGS...
#
#   --loss PCT   drop PCT % (integer 0..100) of UDP packets on the netfilter input hook, chosen at
#                random per packet. On loopback every packet passes the input hook exactly once,
#                so this is PCT % loss in *each* direction (data and ACKs alike). Default 0 (no
#                nftables rule; nft is then not needed).
#
# Exit status: CMD's own status (128+N if it died from signal N), or
#   3  a required tool is missing (prints the Debian package: iproute2, nftables)
#   4  the namespace cannot be created (not root / no CAP_SYS_ADMIN / namespaces not permitted)
#   5  namespace set-up (lo, nftables) failed
#   2  usage error
#
# Needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN). CMD runs as the calling user, with the caller's
# environment and working directory; inside it, only 127.0.0.1/::1 exist.

set -u

usage() {
  echo "usage: $0 [--loss PCT] -- CMD ARGS..." >&2
  exit 2
}

LOSS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --loss)
      [ $# -ge 2 ] || usage
      LOSS="$2"
      shift 2
      ;;
    --loss=*)
      LOSS="${1#--loss=}"
      shift
      ;;
    --)
      shift
      break
      ;;
    -h|--help)
      usage
      ;;
    *)
      echo "netns.sh: unexpected argument '$1' (put the command after --)" >&2
      usage
      ;;
  esac
done
[ $# -ge 1 ] || usage

if ! [[ "$LOSS" =~ ^[0-9]+$ ]] || [ "$LOSS" -gt 100 ]; then
  echo "netns.sh: --loss must be an integer percentage 0..100, got '$LOSS'" >&2
  exit 2
fi
LOSS=$((10#$LOSS))

# ---- tools -------------------------------------------------------------------------------------
# ip and nft usually live in /usr/sbin, which is not always on a non-login PATH
PATH="$PATH:/usr/sbin:/sbin"

if ! command -v ip >/dev/null 2>&1; then
  echo "netns.sh: 'ip' not found: install the Debian package iproute2 (apt-get install -y iproute2)" >&2
  exit 3
fi
if [ "$LOSS" -gt 0 ] && ! command -v nft >/dev/null 2>&1; then
  echo "netns.sh: 'nft' not found (needed for --loss): install the Debian package nftables (apt-get install -y nftables)" >&2
  exit 3
fi

# ---- namespace ---------------------------------------------------------------------------------
NS="p2ps-$$-$RANDOM"
CHILD=""
CREATED=0

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  # our own command only, by PID, if it is somehow still running
  if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
    kill -TERM "$CHILD" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$CHILD" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$CHILD" 2>/dev/null
    wait "$CHILD" 2>/dev/null
  fi
  if [ "$CREATED" = 1 ]; then
    if ! ip netns delete "$NS" 2>/dev/null; then
      sleep 0.2
      ip netns delete "$NS" 2>/dev/null || echo "netns.sh: warning: could not delete namespace $NS" >&2
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if ! err=$(ip netns add "$NS" 2>&1); then
  echo "netns.sh: cannot create network namespace $NS: $err" >&2
  if [ "$(id -u)" != 0 ]; then
    echo "netns.sh: run as root (network namespaces need CAP_SYS_ADMIN)" >&2
  else
    echo "netns.sh: namespaces are not permitted here (container without CAP_SYS_ADMIN / no /run/netns?)" >&2
  fi
  exit 4
fi
CREATED=1

if ! err=$(ip -n "$NS" link set lo up 2>&1); then
  echo "netns.sh: cannot bring up lo in $NS: $err" >&2
  exit 5
fi

if [ "$LOSS" -gt 0 ]; then
  if ! err=$(ip netns exec "$NS" nft -f - 2>&1 <<EOF
table inet p2ps {
  chain input {
    type filter hook input priority 0; policy accept;
    meta l4proto udp numgen random mod 100 < $LOSS drop
  }
}
EOF
  ); then
    echo "netns.sh: cannot install the nftables loss rule in $NS: $err" >&2
    echo "netns.sh: (is the nf_tables kernel module available? try: nft list ruleset)" >&2
    exit 5
  fi
fi

# ---- run ---------------------------------------------------------------------------------------
# in the background so that a signal to this script still reaches the cleanup trap; "<&0"
# keeps our stdin (bash would give a background job /dev/null)
ip netns exec "$NS" "$@" <&0 &
CHILD=$!
wait "$CHILD"
rc=$?
# wait returns >128 when interrupted by a trapped signal; the trap then exits and cleans up
CHILD=""
exit "$rc"
