#!/usr/bin/env bash
# Checks that include/p2pswarm.h matches what the pinned cbindgen generates from ffi/src
# (`--fix` rewrites it). Installs cbindgen 0.29.4 if it is missing or another version.
set -euo pipefail
cd "$(dirname "$0")/.."
want="0.29.4"
if ! cbindgen --version 2>/dev/null | grep -q "$want"; then
  cargo install cbindgen --version "$want" --locked
fi
args=(--config ffi/cbindgen.toml --crate p2pswarm-ffi --output include/p2pswarm.h)
if [ "${1:-}" = "--fix" ]; then
  cbindgen "${args[@]}"
  echo "include/p2pswarm.h regenerated"
else
  cbindgen --verify "${args[@]}" || {
    echo "include/p2pswarm.h is stale: run ffi/check-header.sh --fix and commit it" >&2
    exit 1
  }
  echo "include/p2pswarm.h is up to date"
fi
