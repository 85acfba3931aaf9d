#!/usr/bin/env bash
# Python binding tests on a fresh machine: makes a new virtualenv, `pip install`s the package
# from source (the fresh-machine path; builds the Rust extension with maturin through PEP 517),
# pinned pytest + pytest-asyncio, and runs the suite. Then builds the abi3 wheel with
# `maturin build` and imports it with every other CPython >= 3.9 found on PATH.
#
#   bindings/python/run-tests.sh [pytest args...]
#   P2PSWARM_SKIP_NETNS=1 bindings/python/run-tests.sh   # skip the JS-in-a-namespace test
#
# Needs: python3 >= 3.9 with venv, a Rust toolchain, network access to PyPI (pinned packages);
# node + npm and root for the JS interop test (skipped with a message otherwise).
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
PY=${PYTHON:-python3}
MATURIN=maturin==1.16.0
PYTEST=pytest==9.2.0
PYTEST_ASYNCIO=pytest-asyncio==1.5.0
step() { printf '\n==> %s\n' "$*"; }

venv="$here/target/test-venv"
step "fresh virtualenv ($($PY --version)) in $venv"
rm -rf "$venv"
"$PY" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)

step "pip install $PYTEST $PYTEST_ASYNCIO $MATURIN"
"${pip[@]}" install "$PYTEST" "$PYTEST_ASYNCIO" "$MATURIN"

step "pip install ./bindings/python (builds the extension, release profile)"
"${pip[@]}" install "$here"
# the tests must import the installed package, not the source tree
(cd /tmp && "$venv/bin/python" -c 'import p2pswarm, sys; print("p2pswarm", p2pswarm.__version__, "from", p2pswarm.__file__)')

step "pytest"
(cd "$here" && timeout 900 "$venv/bin/python" -m pytest -p no:cacheprovider -q -rs "$@" tests)

step "maturin build: the abi3 wheel, imported by each CPython >= 3.9 on PATH"
rm -rf target/wheels
"$venv/bin/maturin" build --release --quiet -o target/wheels >/dev/null
wheel=$(ls target/wheels/p2pswarm-*-cp39-abi3-*.whl)
echo "$wheel"
cands=()
for v in 3.9 3.10 3.11 3.12 3.13 3.14; do
  exe=$(command -v "python$v" || true)
  [ -n "$exe" ] && cands+=("$exe")
done
if command -v pyenv >/dev/null; then  # pyenv shims only run the selected version: use the real ones
  for exe in "$(pyenv root)"/versions/3.*/bin/python3; do [ -x "$exe" ] && cands+=("$exe"); done
fi
declare -A seen=()
for exe in "${cands[@]}"; do
  v=$("$exe" -c 'import sys; print("%d.%d" % sys.version_info[:2]) if sys.version_info >= (3, 9) else sys.exit(1)' 2>/dev/null) || continue
  [ -z "${seen[$v]:-}" ] || continue
  seen[$v]=1
  w="$here/target/wheel-venv-$v"
  rm -rf "$w"
  "$exe" -m venv "$w" 2>/dev/null || { echo "python$v: no venv module, skipped"; continue; }
  "$w/bin/python" -m pip --disable-pip-version-check -q install "$wheel"
  (cd /tmp && "$w/bin/python" -c '
import asyncio, sys, p2pswarm
async def main():
    with p2pswarm.testnet(2) as net:
        async with p2pswarm.P2Pswarm(bootstrap=net.bootstrap) as s:
            await s.join(bytes(32)).flushed()
    print("wheel ok on", sys.version.split()[0])
asyncio.run(main())')
  rm -rf "$w"
done
