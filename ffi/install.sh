#!/usr/bin/env bash
# Builds libp2pswarm (release) and installs it under PREFIX:
#   PREFIX/lib/libp2pswarm.so.0.1.0 (+ libp2pswarm.so.0, libp2pswarm.so links), libp2pswarm.a,
#   PREFIX/include/p2pswarm.h, PREFIX/lib/pkgconfig/p2pswarm.pc
#
#   ffi/install.sh /usr/local          # then: pkg-config --cflags --libs p2pswarm
#   ffi/install.sh PREFIX --debug      # install the debug build instead (used by the tests)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 PREFIX [--debug]" >&2; exit 2; }
cd "$(dirname "$0")/.."
prefix=$(mkdir -p "$1" && cd "$1" && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
if [ "${2:-}" = "--debug" ]; then
  cargo build -p p2pswarm-ffi --locked
  build=target/debug
else
  cargo build -p p2pswarm-ffi --locked --release
  build=target/release
fi
install -d "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0755 "$build/libp2pswarm.so" "$prefix/lib/libp2pswarm.so.$version"
ln -sf "libp2pswarm.so.$version" "$prefix/lib/libp2pswarm.so.0"
ln -sf "libp2pswarm.so.0" "$prefix/lib/libp2pswarm.so"
install -m 0644 "$build/libp2pswarm.a" "$prefix/lib/libp2pswarm.a"
if [ "$build" = target/release ] && command -v strip >/dev/null; then
  # the release profile keeps line tables (debug = 1); installs ship without them
  strip --strip-debug "$prefix/lib/libp2pswarm.so.$version" "$prefix/lib/libp2pswarm.a"
fi
install -m 0644 include/p2pswarm.h "$prefix/include/p2pswarm.h"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" ffi/p2pswarm.pc.in \
  > "$prefix/lib/pkgconfig/p2pswarm.pc"
echo "installed libp2pswarm $version into $prefix"
