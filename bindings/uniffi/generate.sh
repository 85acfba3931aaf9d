#!/usr/bin/env bash
# Builds libp2pswarm_uniffi.so (debug) and uniffi-bindgen, then (re)generates the Kotlin, Swift
# and Python sources from the library. With --check, fails if the committed sources differ.
#
#   bindings/uniffi/generate.sh [--check] [--release]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
profile=debug
check=0
for a in "$@"; do
  case "$a" in
    --check) check=1 ;;
    --release) profile=release ;;
    *) echo "usage: $0 [--check] [--release]" >&2; exit 2 ;;
  esac
done
flag=()
[ "$profile" = release ] && flag=(--release)
cargo build -q --locked -p p2pswarm-uniffi "${flag[@]}"
cargo build -q --locked --manifest-path bindings/uniffi/bindgen/Cargo.toml --target-dir "$root/target"
lib="$root/target/$profile/libp2pswarm_uniffi.so"
gen="$root/target/uniffi-gen"
rm -rf "$gen"
for lang in kotlin swift python; do
  "$root/target/debug/uniffi-bindgen" generate --no-format --library "$lib" --language "$lang" \
    --out-dir "$gen/$lang" >/dev/null
done
u="$root/bindings/uniffi"
declare -A dest=(
  ["$gen/kotlin/io/p2pswarm/uniffi/p2pswarm_uniffi.kt"]="$u/kotlin/src/main/kotlin/io/p2pswarm/uniffi/p2pswarm_uniffi.kt"
  ["$gen/swift/P2pswarmFFI.swift"]="$u/swift/Sources/P2pswarm/P2pswarmFFI.swift"
  ["$gen/swift/p2pswarm_uniffiFFI.h"]="$u/swift/Sources/p2pswarm_uniffiFFI/p2pswarm_uniffiFFI.h"
  ["$gen/python/p2pswarm_uniffi.py"]="$u/tests/python/p2pswarm_uniffi.py"
)
status=0
for src in "${!dest[@]}"; do
  d=${dest[$src]}
  if [ "$check" = 1 ]; then
    if ! cmp -s "$src" "$d"; then
      echo "generated source out of date: ${d#$root/} (run bindings/uniffi/generate.sh)" >&2
      status=1
    fi
  else
    mkdir -p "$(dirname "$d")"
    cp "$src" "$d"
  fi
done
exit $status
