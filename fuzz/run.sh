#!/usr/bin/env bash
# Builds every cargo-fuzz target of p2pswarm and fuzzes each for a bounded time.
#
#   fuzz/run.sh [TARGET...]        (default: every target in fuzz/fuzz_targets)
#
# Environment:
#   FUZZ_SECONDS    seconds of fuzzing per target (default 20)
#   FUZZ_SANITIZER  none (default) | address | leak | memory | thread
#                   p2pswarm is #![forbid(unsafe_code)], so the default trades AddressSanitizer
#                   for about twice the executions per second; `none` also builds on a stable
#                   toolchain as it is. Any sanitizer needs nightly features: the script uses
#                   an installed nightly toolchain, or else stable with RUSTC_BOOTSTRAP=1.
#   FUZZ_TOOLCHAIN  force a rustup toolchain (e.g. nightly); empty = choose as above
#   FUZZ_ARGS       extra libFuzzer arguments (e.g. "-max_len=8192")
#
# Exits nonzero if the build fails or any target finds a crash, a timeout or an out-of-memory
# input. The input is then under fuzz/artifacts/<target>/ and the failing target's log tail is
# printed; reproduce with: cargo fuzz run --fuzz-dir fuzz <target> fuzz/artifacts/<target>/<file>
# (from the repository root, with the same toolchain and -s flag).
#
# Working files (all ignored by git): fuzz/target (build), fuzz/corpus/<target> (corpus grown
# across runs; the committed seeds in fuzz/seeds/<target> are read but never written),
# fuzz/artifacts/<target> (crashes), fuzz/logs/<target>.log.
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$FUZZ_DIR/.." && pwd)"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-20}"
SANITIZER="${FUZZ_SANITIZER:-none}"

log() { printf '[fuzz] %s\n' "$*" >&2; }
start_all=$(date +%s)

# --- cargo-fuzz -------------------------------------------------------------------------------
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "cargo-fuzz not found; installing it from crates.io"
    t0=$(date +%s)
    cargo install cargo-fuzz --locked
    log "cargo-fuzz installed in $(( $(date +%s) - t0 ))s"
fi
log "$(cargo fuzz --version)"

# --- toolchain --------------------------------------------------------------------------------
# cargo-fuzz passes -Zsanitizer=... for any sanitizer but `none`, which only a nightly compiler
# (or a stable one with RUSTC_BOOTSTRAP=1) accepts. rustup cannot download toolchains on every
# machine, so an absent nightly is never installed: stable with RUSTC_BOOTSTRAP=1 is used instead.
CARGO=(cargo)
if [[ -n "${FUZZ_TOOLCHAIN:-}" ]]; then
    CARGO=(cargo "+$FUZZ_TOOLCHAIN")
elif [[ "$SANITIZER" != none ]]; then
    if command -v rustup >/dev/null 2>&1 && rustup toolchain list | grep -q '^nightly'; then
        CARGO=(cargo +nightly)
    else
        log "no nightly toolchain; using the default toolchain with RUSTC_BOOTSTRAP=1"
        export RUSTC_BOOTSTRAP=1
    fi
fi
# shellcheck disable=SC2086
log "toolchain: $(rustc ${CARGO[1]:-} --version)${RUSTC_BOOTSTRAP:+ (RUSTC_BOOTSTRAP=1)}; sanitizer: $SANITIZER"

cd "$ROOT"
FUZZ=("${CARGO[@]}" fuzz)
COMMON=(--fuzz-dir fuzz --sanitizer "$SANITIZER" --target-dir "$FUZZ_DIR/target")

if [[ $# -gt 0 ]]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <("${FUZZ[@]}" list --fuzz-dir fuzz)
fi
[[ ${#TARGETS[@]} -gt 0 ]] || { log "no fuzz targets found"; exit 1; }

# --- build ------------------------------------------------------------------------------------
t0=$(date +%s)
"${FUZZ[@]}" build "${COMMON[@]}"
log "built the fuzz targets in $(( $(date +%s) - t0 ))s"

# --- run --------------------------------------------------------------------------------------
mkdir -p "$FUZZ_DIR/logs"
failed=()
for t in "${TARGETS[@]}"; do
    corpus="$FUZZ_DIR/corpus/$t"
    mkdir -p "$corpus" "$FUZZ_DIR/artifacts/$t"
    dirs=("$corpus")
    [[ -d "$FUZZ_DIR/seeds/$t" ]] && dirs+=("$FUZZ_DIR/seeds/$t")
    logf="$FUZZ_DIR/logs/$t.log"
    log "running $t for ${SECONDS_PER_TARGET}s"
    t0=$(date +%s)
    # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: 2 GiB is an OOM finding.
    # shellcheck disable=SC2086
    if "${FUZZ[@]}" run "${COMMON[@]}" "$t" "${dirs[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 ${FUZZ_ARGS:-} >"$logf" 2>&1; then
        stats=$(grep -E '^(#[0-9]+[[:space:]]+DONE|Done [0-9]+ runs)' "$logf" | tail -n 2 | tr '\n' ' ')
        log "$t: ok in $(( $(date +%s) - t0 ))s: $stats"
    else
        log "$t: FAILED after $(( $(date +%s) - t0 ))s (log: $logf)"
        tail -n 60 "$logf" >&2
        failed+=("$t")
    fi
done

log "total $(( $(date +%s) - start_all ))s"
if [[ ${#failed[@]} -gt 0 ]]; then
    log "targets with findings: ${failed[*]}"
    for t in "${failed[@]}"; do
        msg=$(grep -m1 -A2 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" \
            "$FUZZ_DIR/logs/$t.log" || true)
        log "$t: ${msg:-see $FUZZ_DIR/logs/$t.log}"
        for f in "$FUZZ_DIR/artifacts/$t"/*; do
            [[ -f "$f" ]] || continue
            log "$t: $f ($(stat -c %s "$f") bytes): $(od -An -tx1 -v "$f" | tr -d ' \n' | head -c 2000)"
        done
    done
    exit 1
fi
log "all ${#TARGETS[@]} target(s) ran without a finding"
