#!/usr/bin/env bash
# The C tests of libp2pswarm: builds the library (debug) and the tests with gcc, then runs
#   1. every test under AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer on),
#   2. every test but test_backpressure under valgrind memcheck (zero errors, zero definite,
#      indirect or possible leaks),
#   3. the C <-> JS hyperswarm interop test inside a fresh network namespace,
#   4. the header drift check, an install + pkg-config build of the C example, and two chat
#      examples talking over a testnet (ffi/tests/chat-e2e.sh).
# Everything talks over loopback only: the tests start their own testnet.
#
#   ffi/tests/run.sh                   # all of it
#   P2PSWARM_SKIP_VALGRIND=1 ffi/tests/run.sh
#   P2PSWARM_SKIP_NETNS=1 ffi/tests/run.sh   (the interop test needs root for namespaces)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
out="$root/target/ffi-tests"
step() { printf '\n--> %s\n' "$*"; }

step "tools (gcc, valgrind, pkg-config)"
need=()
command -v gcc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
command -v pkg-config >/dev/null || need+=(pkg-config)
[ "${P2PSWARM_SKIP_VALGRIND:-0}" = 1 ] || command -v valgrind >/dev/null || need+=(valgrind)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "missing ${need[*]}: install them (Debian: apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

step "cargo build -p p2pswarm-ffi"
cargo build -p p2pswarm-ffi --locked
lib="$root/target/debug"
mkdir -p "$out/lib"
ln -sf "$lib/libp2pswarm.so" "$out/lib/libp2pswarm.so.0"
ln -sf "$lib/libp2pswarm.so" "$out/lib/libp2pswarm.so"
readelf -d "$lib/libp2pswarm.so" | grep -q 'SONAME.*libp2pswarm.so.0' || {
  echo "libp2pswarm.so has no SONAME libp2pswarm.so.0" >&2
  exit 1
}

tests=(misuse swarm dht callback backpressure)
# test_backpressure moves ~16 MiB through the unoptimised stack: too slow under valgrind
valgrind_tests=(misuse swarm dht callback)
cflags=(-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -I"$root/include")
step "compile the C tests (plain and ASan+UBSan)"
for t in "${tests[@]}" interop_js; do
  gcc "${cflags[@]}" "ffi/tests/test_$t.c" -L"$out/lib" -lp2pswarm -lpthread -o "$out/test_$t"
  gcc "${cflags[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer \
    "ffi/tests/test_$t.c" -L"$out/lib" -lp2pswarm -lpthread -o "$out/asan_$t"
done
export LD_LIBRARY_PATH="$out/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

step "C tests under AddressSanitizer (with LeakSanitizer)"
for t in "${tests[@]}"; do
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    timeout 300 "$out/asan_$t"
done

if [ "${P2PSWARM_SKIP_VALGRIND:-0}" = 1 ]; then
  echo "(valgrind skipped: P2PSWARM_SKIP_VALGRIND=1)"
else
  step "C tests under valgrind memcheck"
  for t in "${valgrind_tests[@]}"; do
    timeout 900 valgrind -q --error-exitcode=99 --leak-check=full \
      --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
      --suppressions="$root/ffi/tests/valgrind.supp" "$out/test_$t"
  done
fi

step "C swarm <-> JS hyperswarm in a network namespace"
if [ "${P2PSWARM_SKIP_NETNS:-0}" = 1 ]; then
  echo "(skipped: P2PSWARM_SKIP_NETNS=1)"
else
  if [ ! -d tests/interop/js/node_modules ]; then
    (cd tests/interop/js && npm ci --no-audit --no-fund --loglevel=error)
  fi
  ASAN_OPTIONS=detect_leaks=1 timeout 300 tests/interop/netns.sh -- \
    "$out/asan_interop_js" "$root/tests/interop/js"
fi

step "header drift check; the header compiles as C99 (pedantic) and C++11"
ffi/check-header.sh
gcc -x c -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only include/p2pswarm.h
g++ -x c++ -std=c++11 -Wall -Wextra -Werror -fsyntax-only include/p2pswarm.h

step "install into a staging prefix and build the C example with pkg-config"
rm -rf "$out/prefix"
ffi/install.sh "$out/prefix" --debug
PKG_CONFIG_PATH="$out/prefix/lib/pkgconfig" make -s -C examples/c clean all \
  PREFIX="$out/prefix" OUT="$out/chat"
LD_LIBRARY_PATH="$out/prefix/lib" "$out/chat" --help >/dev/null
# the static library links with pkg-config --static
pc="$out/prefix/lib/pkgconfig"
gcc "${cflags[@]}" ffi/tests/test_misuse.c -o "$out/static_misuse" "$out/prefix/lib/libp2pswarm.a" \
  $(PKG_CONFIG_PATH="$pc" pkg-config --static --libs-only-l p2pswarm | sed 's/-lp2pswarm//')
if ldd "$out/static_misuse" | grep -q p2pswarm; then
  echo "static_misuse links libp2pswarm dynamically" >&2
  exit 1
fi
"$out/static_misuse"
LD_LIBRARY_PATH="$out/prefix/lib" timeout 120 ffi/tests/chat-e2e.sh "$out/chat"

printf '\nffi C tests passed\n'
