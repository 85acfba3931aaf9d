#!/usr/bin/env bash
# Builds and tests the Swift package with Debian trixie's `swiftlang` (Swift 6.0) inside a
# debootstrap chroot, for machines without a Swift toolchain (Debian bookworm has none). Needs
# root, debootstrap (installed with apt-get when missing) and access to Debian's archive.
# The chroot (~3 GB) is kept in target/swift-chroot and reused.
#
#   bindings/uniffi/swift/chroot-test.sh
#
# Exit status: the build/test status; 77 when the toolchain cannot be set up here (not root, no
# debootstrap, archive unreachable), so that callers can report a skip.
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$(pwd)
c="$root/target/swift-chroot"
skip() { echo "swift chroot: $*" >&2; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root (chroot, mounts)"
PATH="$PATH:/usr/sbin:/sbin"
if ! command -v debootstrap >/dev/null; then
  command -v apt-get >/dev/null || skip "no debootstrap and no apt-get"
  (DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap) || skip "cannot install debootstrap"
fi
if [ ! -x "$c/usr/libexec/swift/bin/swift" ] || [ ! -e "$c/usr/include/stdio.h" ]; then
  echo "swift chroot: debootstrap trixie + swiftlang into $c (once, a few minutes)"
  rm -rf "$c"
  mkdir -p "$c"
  timeout 1200 debootstrap --variant=minbase --include=swiftlang,libc6-dev,libstdc++-14-dev,ca-certificates \
    trixie "$c" http://deb.debian.org/debian >"$root/target/swift-chroot.log" 2>&1 ||
    { tail -5 "$root/target/swift-chroot.log" >&2; rm -rf "$c"; skip "debootstrap failed (see target/swift-chroot.log)"; }
fi

cargo build -q --locked -p p2pswarm-uniffi
mkdir -p "$c/src" "$c/lib-uniffi" "$c/proc"
cp "$root/target/debug/libp2pswarm_uniffi.so" "$c/lib-uniffi/"
cleanup() {
  # processes this script started in the chroot (e.g. a test binary left by a timeout)
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$c" ] && kill -KILL "${p#/proc/}" 2>/dev/null
  done
  umount "$c/src" 2>/dev/null || true
  umount "$c/proc" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mount -t proc proc "$c/proc"          # the toolchain finds its libraries through /proc/self/exe
mount --bind "$root/bindings/uniffi/swift" "$c/src"
chroot "$c" /bin/sh -c 'swift --version 2>/dev/null | head -1'
# a scratch build directory inside the chroot: the package directory stays clean
chroot "$c" /bin/bash -o pipefail -c 'cd /src && export LD_LIBRARY_PATH=/lib-uniffi &&
  swift build --scratch-path /tmp/swift-build -Xlinker -L/lib-uniffi 2>&1 | grep -vE "^\[[0-9]+/[0-9]+\]" &&
  timeout --kill-after=10 300 swift test --disable-swift-testing --scratch-path /tmp/swift-build -Xlinker -L/lib-uniffi 2>&1 |
    grep -vE "^\[[0-9]+/[0-9]+\]"'
