#!/usr/bin/env bash
# Runs the connection matrix (client NAT x server NAT, per router kind) in the NAT lab and prints a
# markdown table per router kind: outcome (direct / punched / failed:CODE) with successes/runs and
# the median time to open (ms) over the successful runs.
#
#   tests/nat/matrix.sh [--runs N] [--random-runs N] [--transit N] [--routers "drop accept"]
#                       [--types "open consistent ..."]
#
# --random-runs: runs for cells with a `random` side (default: --runs); --transit: lab.sh's
# forwarding routers between each site and the public segment (default 0).
#
# Peers: NAT_CLIENT_CMD / NAT_SERVER_CMD as in cell.sh (default: the JS fixture both sides).
# Raw per-run lines go to stderr. Exit 77 if the lab cannot be built here.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
RUNS=3
RRUNS=""
TRANSIT=0
ROUTERS="drop accept"
TYPES="open consistent random double firewalled"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --random-runs) RRUNS="$2"; shift 2 ;;
    --transit) TRANSIT="$2"; shift 2 ;;
    --routers) ROUTERS="$2"; shift 2 ;;
    --types) TYPES="$2"; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--random-runs N] [--transit N] [--routers LIST] [--types LIST]" >&2; exit 2 ;;
  esac
done
RRUNS="${RRUNS:-$RUNS}"

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }

for router in $ROUTERS; do
  echo
  echo "Router kind: $router, transit $TRANSIT (rows: client NAT, columns: server NAT; outcome ok/runs, median ms to open)"
  echo
  printf '| client \\ server |'; for s in $TYPES; do printf ' %s |' "$s"; done; echo
  printf '|---|'; for _ in $TYPES; do printf -- '---|'; done; echo
  for c in $TYPES; do
    printf '| %s |' "$c"
    for s in $TYPES; do
      outs=(); times=(); ok=0
      n=$RUNS
      [ "$c" = random ] || [ "$s" = random ] && n=$RRUNS
      for ((r = 0; r < n; r++)); do
        line="$("$HERE/lab.sh" --client "$c" --server "$s" --router "$router" --transit "$TRANSIT" -- "$HERE/cell.sh" 2>/dev/null | grep '^RESULT' | tail -1)"
        rc=${PIPESTATUS[0]}
        if [ "$rc" = 77 ]; then echo "SKIPPED: the NAT lab cannot run here" >&2; exit 77; fi
        [ -n "$line" ] || line="RESULT failed:LAB 0 (lab exit $rc)"
        echo "[$router] $c -> $s run $r: $line" >&2
        o="$(awk '{print $2}' <<<"$line")"
        ms="$(awk '{print $3}' <<<"$line")"
        outs+=("$o")
        case "$o" in direct|punched) ok=$((ok + 1)); times+=("$ms") ;; esac
      done
      main="$(printf '%s\n' "${outs[@]}" | sort | uniq -c | sort -rn | awk 'NR==1{print $2}')"
      if [ "$ok" -gt 0 ]; then
        main="$(printf '%s\n' "${outs[@]}" | grep -E '^(direct|punched)$' | sort | uniq -c | sort -rn | awk 'NR==1{print $2}')"
      fi
      med="$(printf '%s\n' "${times[@]:-}" | grep -E '^[0-9]+$' | median)"
      printf ' %s %d/%d %s |' "$main" "$ok" "$n" "${med}ms"
    done
    echo
  done
done
