#!/usr/bin/env bash
# A NAT lab for one run, built from Linux network namespaces, veth pairs, one bridge and nftables.
#
#   tests/nat/lab.sh --client TYPE --server TYPE [--router drop|accept] [--transit N] -- CMD ARGS...
#
# TYPE is one of
#   open        no NAT, the host has a public address (routed through its router)
#   consistent  one NAT, nftables `masquerade` (endpoint-independent mapping while ports are free)
#   random      one NAT, nftables `masquerade fully-random` (a new port per destination)
#   double      two consistent NATs in series
#   firewalled  a public address, but the router drops unsolicited inbound (established/related
#               only)
#   same        (server only, with a consistent/random client) the server is a second host on the
#               client's LAN, 192.168.1.3, behind the same NAT
# --router drop (default): NAT routers drop unsolicited inbound traffic on their WAN (input and
#   forward hooks); accept: they do not filter (unsolicited datagrams to the router itself get the
#   kernel's ICMP port-unreachable and create conntrack entries -- see docs/nat-matrix.md).
# --transit N (default 0): N plain forwarding routers ("ISP" hops, no NAT, no filter) between each
#   site's (outer) router and the public segment, and the public namespace routes between the
#   sites. 0 = the routers' WANs sit on the public bridge (adjacent routers: a packet that leaves
#   one site's NAT reaches the other site's router whatever its TTL). With N >= 1 the far router
#   is 2N+1 router hops beyond a site's (outer) router, so a TTL-limited probe can open its own
#   NAT(s) and expire in transit (router hops from a consistent host to the far router: 2N+2).
#
# Layout (10.10.0.0/24 is the "public" segment; not a documentation range, which hyperdht treats
# as bogons):
#   PUB   namespace with bridge br0 = 10.10.0.1/24 (where the bootstrap DHT nodes run), routes the
#         open/firewalled hosts' public /24s
#   RC/RS client/server routers, WAN 10.10.0.11 / 10.10.0.12 (with --transit N: WAN 10.4i.N.2,
#         behind transit routers t1..tN: t1 on the bridge as 10.10.0.2i, link j = 10.4i.j.0/24;
#         i = 1 client, 2 server)
#   C/S   the client/server hosts: 192.168.1.2 / 192.168.2.2 behind NAT (double: behind an inner
#         router 172.16.x.2 -> 192.168.x.0/24), or 10.10.11.2 / 10.10.12.2 when open/firewalled
#
# CMD runs in the *default* namespace with these variables and must only use
# `ip netns exec "$NAT_LAB_xxx" ...` to put traffic on the lab:
#   NAT_LAB_PUB NAT_LAB_CLIENT NAT_LAB_SERVER   namespace names
#   NAT_LAB_BOOT_HOST                           10.10.0.1 (bootstrap nodes bind in NAT_LAB_PUB)
#   NAT_LAB_CLIENT_TYPE NAT_LAB_SERVER_TYPE NAT_LAB_ROUTER NAT_LAB_TRANSIT
#   NAT_LAB_CLIENT_ROUTER NAT_LAB_SERVER_ROUTER      the sites' outer router namespaces
# Everything (namespaces, and any process left inside them) is removed by a trap on exit.
#
# Exit status: CMD's status; 77 = SKIPPED (namespaces/nftables not usable here); 2 usage;
# 5 set-up failed.

set -u
PATH="$PATH:/usr/sbin:/sbin"

usage() {
  echo "usage: $0 --client TYPE --server TYPE [--router drop|accept] [--transit N] -- CMD ARGS..." >&2
  exit 2
}

CT=""; ST=""; ROUTER=drop; TRANSIT=0
while [ $# -gt 0 ]; do
  case "$1" in
    --client) CT="${2:-}"; shift 2 ;;
    --server) ST="${2:-}"; shift 2 ;;
    --router) ROUTER="${2:-}"; shift 2 ;;
    --transit) TRANSIT="${2:-}"; shift 2 ;;
    --) shift; break ;;
    *) usage ;;
  esac
done
[ $# -ge 1 ] || usage
for t in "$CT" "$ST"; do
  case "$t" in open|consistent|random|double|firewalled|same) ;; *) echo "lab.sh: bad type '$t'" >&2; usage ;; esac
done
if [ "$CT" = same ] || { [ "$ST" = same ] && [ "$CT" != consistent ] && [ "$CT" != random ]; }; then
  echo "lab.sh: 'same' is a server type and needs a consistent or random client site" >&2
  usage
fi
case "$ROUTER" in drop|accept) ;; *) usage ;; esac
case "$TRANSIT" in [0-9]) ;; *) echo "lab.sh: --transit takes 0-9" >&2; usage ;; esac

skip() {
  echo "SKIPPED nat lab: $*" >&2
  exit 77
}
command -v ip >/dev/null 2>&1 || skip "'ip' missing (apt-get install -y iproute2)"
command -v nft >/dev/null 2>&1 || skip "'nft' missing (apt-get install -y nftables)"

P="nl$$"                      # per-run prefix (interface names stay short: <= 15 chars)
NSS=()
CHILD=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
    kill -TERM "$CHILD" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$CHILD" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$CHILD" 2>/dev/null
    wait "$CHILD" 2>/dev/null
  fi
  local ns pid
  for ns in "${NSS[@]}"; do
    # only processes inside our own per-run namespaces, i.e. ones this run started
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  for ns in "${NSS[@]}"; do
    ip netns delete "$ns" 2>/dev/null || { sleep 0.2; ip netns delete "$ns" 2>/dev/null; } \
      || echo "lab.sh: warning: could not delete namespace $ns" >&2
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

die() { echo "lab.sh: set-up failed: $*" >&2; exit 5; }

mkns() {
  local ns="$P-$1"
  if ! err=$(ip netns add "$ns" 2>&1); then
    [ ${#NSS[@]} -eq 0 ] && skip "cannot create a network namespace ($err); needs root / CAP_SYS_ADMIN"
    die "ip netns add $ns: $err"
  fi
  NSS+=("$ns")
  ip -n "$ns" link set lo up || die "lo up in $ns"
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv4.conf.all.send_redirects=0 net.ipv4.ip_forward=1 >/dev/null 2>&1 || true
}
ns() { echo "$P-$1"; }
# veth pair A (in ns X) <-> B (in ns Y), created directly inside the namespaces
veth() { ip link add "$2" netns "$(ns "$1")" type veth peer name "$4" netns "$(ns "$3")" || die "veth $2/$4"; }
x() { ip netns exec "$(ns "$1")" "${@:2}" || die "$1: ${*:2}"; }

mkns pub
x pub ip link add br0 type bridge
x pub ip addr add 10.10.0.1/24 dev br0
x pub ip link set br0 up
if ! ip netns exec "$(ns pub)" nft list ruleset >/dev/null 2>&1; then
  skip "nftables does not work in a namespace here"
fi

nat_rules() { # $1 ns-key, $2 mode: masq|random|none, $3 filter: yes|no
  local r=""
  r+="table ip lab {"$'\n'
  if [ "$2" != none ]; then
    local m="masquerade"
    [ "$2" = random ] && m="masquerade fully-random"
    r+=" chain natpost { type nat hook postrouting priority srcnat; policy accept; oifname \"wan\" $m; }"$'\n'
  fi
  if [ "$3" = yes ]; then
    r+=" chain filtfwd { type filter hook forward priority 0; policy accept;"
    r+=" iifname \"wan\" ct state established,related accept; iifname \"wan\" drop; }"$'\n'
    r+=" chain filtin { type filter hook input priority 0; policy accept;"
    r+=" iifname \"wan\" ct state established,related accept; iifname \"wan\" drop; }"$'\n'
  fi
  r+="}"
  echo "$r" | ip netns exec "$(ns "$1")" nft -f - || die "nft in $1"
}

# puts namespace $3's interface `$4` on the public bridge (veth end $2 in pub) as $5/24
on_bridge() {
  veth pub "$2" "$3" "$4"
  x pub ip link set "$2" master br0
  x pub ip link set "$2" up
  x "$3" ip addr add "$5/24" dev "$4"
  x "$3" ip link set "$4" up
  x "$3" ip route add default via 10.10.0.1
}

# the WAN side of site router $2 (site $1 = c|s, index $3): on the bridge as 10.10.0.1i, or behind
# TRANSIT forwarding routers; sets NEXT = the address pub routes the site's public ranges through
uplink() {
  local k=$1 r=$2 i=$3 j
  if [ "$TRANSIT" = 0 ]; then
    on_bridge "$k" "w$k" "$r" wan "10.10.0.1$i"
    NEXT="10.10.0.1$i"
    return
  fi
  for ((j = 1; j <= TRANSIT; j++)); do mkns "t$k$j"; done
  for ((j = 1; j <= TRANSIT; j++)); do
    if [ "$j" = 1 ]; then
      on_bridge "$k" "w$k" "t$k$j" upl "10.10.0.2$i"
    fi
    local low="t$k$((j + 1))" lowif=upl
    [ "$j" = "$TRANSIT" ] && { low="$r"; lowif=wan; }
    veth "t$k$j" dnl "$low" "$lowif"
    x "t$k$j" ip addr add "10.4$i.$j.1/24" dev dnl
    x "t$k$j" ip link set dnl up
    x "$low" ip addr add "10.4$i.$j.2/24" dev "$lowif"
    x "$low" ip link set "$lowif" up
    x "$low" ip route add default via "10.4$i.$j.1"
    # everything of this site below link j
    x "t$k$j" ip route add "10.4$i.0.0/16" via "10.4$i.$j.2"
    x "t$k$j" ip route add "10.10.1$i.0/24" via "10.4$i.$j.2"
  done
  x pub ip route add "10.4$i.0.0/16" via "10.10.0.2$i"
  NEXT="10.10.0.2$i"
}

# site $1 = c|s, $2 type, $3 index (1 client, 2 server)
site() {
  local k=$1 t=$2 i=$3 r="r$1"
  mkns "$r"; mkns "$k"
  uplink "$k" "$r" "$i"
  local filt=no
  [ "$ROUTER" = drop ] && filt=yes
  case "$t" in
    open|firewalled)
      veth "$r" lan "$k" eth0
      x "$r" ip addr add "10.10.1$i.1/24" dev lan
      x "$r" ip link set lan up
      x "$k" ip addr add "10.10.1$i.2/24" dev eth0
      x "$k" ip link set eth0 up
      x "$k" ip route add default via "10.10.1$i.1"
      x pub ip route add "10.10.1$i.0/24" via "$NEXT"
      if [ "$t" = firewalled ]; then nat_rules "$r" none yes; fi
      ;;
    consistent|random)
      # the LAN is a bridge in the router, so a second host can join it (server type `same`)
      x "$r" ip link add lanbr type bridge
      x "$r" ip addr add "192.168.$i.1/24" dev lanbr
      x "$r" ip link set lanbr up
      veth "$r" lan "$k" eth0
      x "$r" ip link set lan master lanbr
      x "$r" ip link set lan up
      x "$k" ip addr add "192.168.$i.2/24" dev eth0
      x "$k" ip link set eth0 up
      x "$k" ip route add default via "192.168.$i.1"
      if [ "$t" = random ]; then nat_rules "$r" random "$filt"; else nat_rules "$r" masq "$filt"; fi
      ;;
    double)
      local r2="r2$1"
      mkns "$r2"
      veth "$r" lan "$r2" wan
      x "$r" ip addr add "172.16.$i.1/24" dev lan
      x "$r" ip link set lan up
      x "$r2" ip addr add "172.16.$i.2/24" dev wan
      x "$r2" ip link set wan up
      x "$r2" ip route add default via "172.16.$i.1"
      veth "$r2" lan "$k" eth0
      x "$r2" ip addr add "192.168.$i.1/24" dev lan
      x "$r2" ip link set lan up
      x "$k" ip addr add "192.168.$i.2/24" dev eth0
      x "$k" ip link set eth0 up
      x "$k" ip route add default via "192.168.$i.1"
      nat_rules "$r" masq "$filt"
      nat_rules "$r2" masq "$filt"
      ;;
  esac
}

site c "$CT" 1
if [ "$ST" = same ]; then
  # the server is a second host on the client's LAN, behind the same NAT
  mkns s
  veth rc lan2 s eth0
  x rc ip link set lan2 master lanbr
  x rc ip link set lan2 up
  x s ip addr add 192.168.1.3/24 dev eth0
  x s ip link set eth0 up
  x s ip route add default via 192.168.1.1
else
  site s "$ST" 2
fi

export NAT_LAB_PUB="$(ns pub)" NAT_LAB_CLIENT="$(ns c)" NAT_LAB_SERVER="$(ns s)"
export NAT_LAB_BOOT_HOST=10.10.0.1 NAT_LAB_CLIENT_TYPE="$CT" NAT_LAB_SERVER_TYPE="$ST"
export NAT_LAB_ROUTER="$ROUTER" NAT_LAB_TRANSIT="$TRANSIT"
export NAT_LAB_CLIENT_ROUTER="$(ns rc)" NAT_LAB_SERVER_ROUTER="$(ns rs)"

"$@" <&0 &
CHILD=$!
wait "$CHILD"
rc=$?
CHILD=""
exit "$rc"
