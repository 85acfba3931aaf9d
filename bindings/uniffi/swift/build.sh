#!/usr/bin/env bash
# Builds libp2pswarm_uniffi (debug), then builds and tests the Swift package against it.
# Needs a Swift toolchain (5.9+) on PATH: on Debian trixie `apt-get install swiftlang` (for
# example in a trixie debootstrap chroot with this checkout bind-mounted), or swift.org's
# toolchains on macOS/Linux. Not part of CI (bindings/uniffi/tests/run.sh calls it only when
# `swift` is installed).
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$(pwd)
command -v swift >/dev/null || { echo "swift not found: install a Swift toolchain (Debian trixie: apt-get install swiftlang)" >&2; exit 1; }
cargo build -q --locked -p p2pswarm-uniffi
lib="$root/target/debug"
cd bindings/uniffi/swift
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DYLD_LIBRARY_PATH="$lib${DYLD_LIBRARY_PATH:+:$DYLD_LIBRARY_PATH}"
swift build -Xlinker -L"$lib"
timeout 600 swift test --disable-swift-testing -Xlinker -L"$lib"
