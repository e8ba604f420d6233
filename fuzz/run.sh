#!/usr/bin/env bash
# A short fuzz run of every target (docs/fuzzing.md): 60 seconds each unless given.
#
#   fuzz/run.sh              # every target, 60 s each
#   fuzz/run.sh 600          # every target, 10 minutes each
#   fuzz/run.sh 60 protocol  # one target
#   FUZZ_ARGS="-max_len=4096" fuzz/run.sh   # more libFuzzer flags
#
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 lets the stable toolchain build
# them. The corpus grows in fuzz/corpus/<target> (not committed); crashes land in
# fuzz/artifacts/<target>. Exits non-zero on the first target that finds one.
set -euo pipefail

seconds="${1:-60}"
shift || true
cd "$(dirname "$0")/.."
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(scenario protocol ws_frames)
fi

export RUSTC_BOOTSTRAP=1
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    seeds=("fuzz/seeds/$target")
    if [ "$target" = scenario ]; then
        seeds+=(scenarios tests/data/invalid tests/data/malformed)
    fi
    [ -d "tests/data/fuzz/$target" ] && seeds+=("tests/data/fuzz/$target")
    echo "== $target: $seconds s"
    # The first directory is the corpus libFuzzer adds to; the rest are read-only seeds.
    cargo fuzz run "$target" "fuzz/corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 ${FUZZ_ARGS:-}
done
