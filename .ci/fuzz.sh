#!/usr/bin/env bash
# Fuzz every cargo-fuzz target in fuzz/ for a short, fixed budget; fail on any crash.
#
#   bash .ci/fuzz.sh                      # 30 s per target
#   RTDASH_FUZZ_SECONDS=300 bash .ci/fuzz.sh jwt   # 5 min, one target
#
# The committed seed corpus (fuzz/corpus/<target>/) is copied to a temporary directory, so
# a run never changes the repository; crashing inputs are printed and kept in that
# directory only when RTDASH_FUZZ_KEEP=1. Needs a nightly toolchain (cargo-fuzz builds
# with sanitizers); installs cargo-fuzz from crates.io if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

budget="${RTDASH_FUZZ_SECONDS:-30}"
toolchain="${RTDASH_FUZZ_TOOLCHAIN:-nightly}"

if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    echo "fuzz: the '$toolchain' toolchain is missing (rustup toolchain install $toolchain)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/rtdash-fuzz.XXXXXX")"
if [[ "${RTDASH_FUZZ_KEEP:-0}" != 1 ]]; then
    trap 'rm -rf "$work"' EXIT
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +"$toolchain" fuzz list)
fi

echo "==> fuzz: building ${#targets[@]} targets"
cargo +"$toolchain" fuzz build

failed=()
for t in "${targets[@]}"; do
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
    if [[ -d "fuzz/corpus/$t" ]]; then
        cp -R "fuzz/corpus/$t/." "$work/corpus/$t/"
    fi
    dict=()
    if [[ -f "fuzz/dicts/$t.dict" ]]; then
        dict=(-dict="$PWD/fuzz/dicts/$t.dict")
    fi
    echo "==> fuzz: $t for ${budget}s"
    if ! cargo +"$toolchain" fuzz run "$t" "$work/corpus/$t" -- \
        -max_total_time="$budget" \
        "${dict[@]}" \
        -timeout=30 \
        -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/$t/"; then
        failed+=("$t")
        for f in "$work/artifacts/$t"/*; do
            [[ -f "$f" ]] || continue
            echo "fuzz: $t: crashing input $(basename "$f") ($(wc -c <"$f") bytes), base64:"
            base64 -w0 "$f" | head -c 4096
            echo
        done
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: FAILED: ${failed[*]}" >&2
    [[ "${RTDASH_FUZZ_KEEP:-0}" == 1 ]] && echo "fuzz: inputs kept in $work" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${budget}s each, no crash"
