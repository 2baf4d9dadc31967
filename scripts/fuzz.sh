#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for SECONDS each (default 15, the CI's
# short run; the documented long run is `scripts/fuzz.sh 1800`). Needs the nightly toolchain
# (rustup's; cargo-fuzz instruments with nightly-only flags) and cargo-fuzz, which it
# installs when missing. A crash leaves its input in fuzz/artifacts/<target>/ and fails the
# run: turn it into a regression test next to the decoder that crashed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-15}
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "$0: the fuzz targets need rustup's nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
targets=$(cargo +nightly fuzz list)
cargo +nightly fuzz build -O
for target in $targets; do
    echo "== fuzz $target for ${seconds}s"
    # -max_len bounds an input at 64 KiB: the decoders' limits are tested by the unit tests
    log=$(mktemp)
    status=0
    cargo +nightly fuzz run -O "$target" -- -max_total_time="$seconds" -max_len=65536 >"$log" 2>&1 || status=$?
    grep -E '^#[0-9]+ +DONE|^Done|panicked|ERROR|SUMMARY|artifact' "$log" || tail -20 "$log"
    rm -f "$log"
    if [ "$status" -ne 0 ]; then
        echo "fuzz target $target crashed (exit $status; input in fuzz/artifacts/$target)" >&2
        exit 1
    fi
done
echo "== fuzz: every target ran ${seconds}s without a crash"
