#!/usr/bin/env bash
# The checks of the uniffi bindings (bindings/uniffi):
#   1. builds libp2pswarm_uniffi.so (debug) and uniffi-bindgen; the committed Kotlin, Swift and
#      Python sources must match what the library generates (generate.sh --check),
#   2. uniffi's generated Python as a test harness (pytest, same scenarios as Kotlin),
#   3. Kotlin: `mvn test` (JUnit 5) against the freshly built library,
#   4. as root: the Python and Kotlin <-> JS hyperswarm tests inside a network namespace,
#   5. Swift: `swift build` + XCTest of the package, with the installed toolchain or else (root)
#      with Debian trixie's swiftlang in a debootstrap chroot (swift/chroot-test.sh; skipped with
#      a message when neither is possible).
# Everything talks over loopback only: the tests start their own testnet.
#
#   bindings/uniffi/tests/run.sh
#   P2PSWARM_SKIP_NETNS=1 P2PSWARM_SKIP_SWIFT=1 bindings/uniffi/tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$(pwd)
u="$root/bindings/uniffi"
step() { printf '\n--> %s\n' "$*"; }

step "tools (JDK, Maven, pytest)"
need=()
command -v javac >/dev/null || need+=(default-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "missing ${need[*]}: install them (Debian: apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
python3 -c 'import pytest' 2>/dev/null || python3 -m pip install -q pytest

step "build the library and uniffi-bindgen; generated sources up to date"
"$u/generate.sh" --check

step "uniffi's generated Python (test harness)"
py="$root/target/uniffi-py"
rm -rf "$py"
mkdir -p "$py"
cp "$u/tests/python/"*.py "$py/"
cp "$root/target/debug/libp2pswarm_uniffi.so" "$py/"
(cd "$py" && timeout 600 python3 -m pytest -q -p no:cacheprovider test_uniffi.py)

step "Kotlin: mvn test (JUnit 5)"
mvn_flags=(-q -B -Dstyle.color=never -f "$u/kotlin/pom.xml" -Dnative.lib.dir="$root/target/debug")
nocolor() { sed -u 's/\x1b\[[0-9;]*m//g'; }   # Maven -q still prints colour resets
timeout 900 mvn "${mvn_flags[@]}" test 2>&1 | nocolor
# -q hides Surefire's summary: print it from the reports
python3 - "$u/kotlin/target/surefire-reports" <<'EOF'
import glob, sys, xml.etree.ElementTree as ET
t = f = e = s = 0
for x in glob.glob(sys.argv[1] + "/TEST-*.xml"):
    r = ET.parse(x).getroot()
    t += int(r.get("tests")); f += int(r.get("failures")); e += int(r.get("errors")); s += int(r.get("skipped"))
print(f"kotlin: {t - f - e - s} passed, {f + e} failed, {s} skipped")
EOF

step "Python and Kotlin swarms <-> JS hyperswarm in a network namespace"
if [ "${P2PSWARM_SKIP_NETNS:-0}" = 1 ]; then
  echo "(skipped: P2PSWARM_SKIP_NETNS=1)"
elif [ "$(id -u)" != 0 ]; then
  echo "(skipped: network namespaces need root; run as root to include the JS interop tests)"
else
  if [ ! -d tests/interop/js/node_modules ]; then
    (cd tests/interop/js && npm ci --no-audit --no-fund --loglevel=error)
  fi
  export P2PSWARM_JS_DIR="$root/tests/interop/js"
  (cd "$py" && timeout 300 "$root/tests/interop/netns.sh" -- env P2PSWARM_NETNS=1 \
    python3 -m pytest -q -p no:cacheprovider test_uniffi.py -k js_hyperswarm)
  # offline: the namespace has no network, the dependencies are cached by the run above
  timeout 300 "$root/tests/interop/netns.sh" -- env P2PSWARM_NETNS=1 \
    mvn "${mvn_flags[@]}" -o surefire:test -Dtest='P2pswarmTest#kotlinSwarmTalksToJsHyperswarm' 2>&1 | nocolor
  grep -q 'skipped="0"' "$u/kotlin/target/surefire-reports/TEST-io.p2pswarm.uniffi.P2pswarmTest.xml" || {
    echo "the Kotlin JS interop test was skipped inside the namespace" >&2
    exit 1
  }
  echo "kotlin js interop: 1 passed, 0 failed"
fi

step "Swift package: swift build + XCTest"
if [ "${P2PSWARM_SKIP_SWIFT:-0}" = 1 ]; then
  echo "(skipped: P2PSWARM_SKIP_SWIFT=1)"
elif command -v swift >/dev/null; then
  "$u/swift/build.sh"
else
  # Debian bookworm has no Swift: trixie's swiftlang in a debootstrap chroot (root only)
  rc=0
  "$u/swift/chroot-test.sh" || rc=$?
  if [ "$rc" = 77 ]; then
    echo "(skipped: no Swift toolchain and none could be set up here; see bindings/uniffi/README.md)"
  elif [ "$rc" != 0 ]; then
    exit "$rc"
  fi
fi

printf '\nuniffi binding tests passed\n'
