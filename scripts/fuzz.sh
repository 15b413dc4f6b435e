#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a while (cargo-fuzz + libFuzzer, nightly toolchain).
#
#   scripts/fuzz.sh [SECONDS]        # SECONDS per target, default 60
#   scripts/fuzz.sh 300 path_router  # only the named target(s)
#
# Environment:
#   FUZZ_SANITIZER  address (default) or none: use none when AddressSanitizer does not link
#   FUZZ_TOOLCHAIN  the rustup toolchain, default nightly
#
# Targets (fuzz/fuzz_targets/):
#   definition_loader  OpenAPI/Swagger text -> micro_gw::loader::load (as .yaml and .json)
#   path_router        mgw_runtime::path::normalise (idempotent, canonical) + Router::lookup
#   header_helpers     strip_hop_by_hop/add_forwarded on a header block + config::parse
#
# Seeds are read from fuzz/corpus/<target>/ (committed, kept small), tokens from
# fuzz/dict/<target>.dict; what the fuzzer learns goes to fuzz/target/corpus/<target>/ (ignored),
# so a run never changes a tracked file. Crashes are written to fuzz/artifacts/<target>/ (ignored).
#
# Exit status: 0 when no target failed; 1 when one crashed (panic, failed assertion, timeout of
# more than 10 s on one input, more than 2048 MB of memory), with the reproducer's path printed.
#
# Reproducing and minimising a crash (from the repository root):
#   cargo +nightly fuzz run --fuzz-dir fuzz --target-dir fuzz/target <target> fuzz/artifacts/<target>/crash-<sha1>
#   cargo +nightly fuzz tmin --fuzz-dir fuzz --target-dir fuzz/target <target> fuzz/artifacts/<target>/crash-<sha1>
#   cargo +nightly fuzz fmt  --fuzz-dir fuzz --target-dir fuzz/target <target> fuzz/artifacts/<target>/crash-<sha1>  # print the input
# (add `-s none` to each when FUZZ_SANITIZER=none). The run prints the panic message and stack;
# RUST_BACKTRACE=1 is set for you by libfuzzer-sys. Once fixed, copy the minimised input into
# fuzz/corpus/<target>/ so it stays covered.
set -euo pipefail

seconds="${1:-60}"
shift || true
case "$seconds" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/fuzz"
target_dir="$fuzz_dir/target"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(definition_loader path_router header_helpers)
fi

max_len_for() {
    case "$1" in
        definition_loader) echo 65536 ;;
        *) echo 4096 ;;
    esac
}

cd "$root"
fuzz=(cargo "+$toolchain" fuzz)
common=(--fuzz-dir "$fuzz_dir" --target-dir "$target_dir" --sanitizer "$sanitizer")

echo "==> building fuzz targets (sanitizer: $sanitizer)"
for target in "${targets[@]}"; do
    "${fuzz[@]}" build "${common[@]}" "$target"
done

failed=()
for target in "${targets[@]}"; do
    work="$target_dir/corpus/$target"
    seeds="$fuzz_dir/corpus/$target"
    log="$target_dir/fuzz-$target.log"
    mkdir -p "$work"
    extra=()
    if [ -f "$fuzz_dir/dict/$target.dict" ]; then
        extra+=(-dict="$fuzz_dir/dict/$target.dict")
    fi
    echo "==> $target: ${seconds}s (log: $log)"
    # Crashes land in fuzz/artifacts/<target>/ (cargo-fuzz's -artifact_prefix).
    set +e
    "${fuzz[@]}" run "${common[@]}" "$target" "$work" "$seeds" -- \
        -max_total_time="$seconds" \
        -max_len="$(max_len_for "$target")" \
        -rss_limit_mb=2048 \
        -timeout=10 \
        -print_final_stats=1 \
        "${extra[@]}" \
        2>&1 | tee "$log" | grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^(==[0-9]+==)?ERROR|panicked at|Test unit written to'
    status="${PIPESTATUS[0]}"
    set -e
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        echo "!!! $target failed (exit $status); full output in $log"
        reproducer="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
        if [ -n "$reproducer" ]; then
            echo "!!! reproducer: $reproducer"
            echo "!!! reproduce:  cargo +$toolchain fuzz run --fuzz-dir fuzz --target-dir fuzz/target -s $sanitizer $target $reproducer"
            echo "!!! minimise:   cargo +$toolchain fuzz tmin --fuzz-dir fuzz --target-dir fuzz/target -s $sanitizer $target $reproducer"
        fi
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "==> FAILED: ${failed[*]}"
    exit 1
fi
echo "==> no crash in ${targets[*]} (${seconds}s each)"
