#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a while (cargo-fuzz + libFuzzer, nightly toolchain).
#
#   scripts/fuzz.sh [SECONDS]        # SECONDS per target, default 60
#   scripts/fuzz.sh 300 path_router  # only the named target(s)
#   scripts/fuzz.sh --sync-lock      # regenerate fuzz/Cargo.lock from the workspace's Cargo.lock
#
# Environment:
#   FUZZ_SANITIZER  address (default) or none: use none when AddressSanitizer does not link
#   FUZZ_TOOLCHAIN  the rustup toolchain, default nightly
#
# Targets (fuzz/fuzz_targets/):
#   definition_loader  OpenAPI/Swagger text -> micro_gw::loader::load (as .yaml and .json)
#   path_router        mgw_runtime::path::normalise (idempotent, canonical) + Router::lookup
#   header_helpers     strip_hop_by_hop/add_forwarded on a header block + config::parse
#   jwt_verify         JwtVerifier::verify: header/claims decoding, issuer lookup, claim reads
#                      (raw tokens, and header+claims the target signs with an issuer's secret)
#   credentials        auth scheme values, query parameters and percent-decoding, API-key
#                      cookies, log redaction, removal of every credential before proxying
#   basic_auth         Authorization: Basic decoding (base64, UTF-8, user:password)
#   jwks_document      JWKS parsing, key selection by kid+alg, a signature check per key
#   introspection_answer  RFC 7662 answers: active, exp, scope, client_id, cache lifetime
#   cache_control      max-age from Cache-Control headers
#   apim_export        the API Manager export zip: deployments.json and the inner project zips
#   upstream_response  an upstream's HTTP/1 answer as the lean client reads it (head, framing,
#                      chunked body, trailers): the same whole or one byte at a time
#   request_head       a client's bytes as the lean HTTP/1.1 server reads its first request:
#                      served or handed to hyper the same in any pieces, every byte accounted for
#
# The lock: fuzz/ is its own workspace (nightly + libFuzzer) with its own fuzz/Cargo.lock, kept
# in step with the workspace's Cargo.lock: every package both use is pinned at the same version.
# Each run first checks that (and builds with a lock that needs no change, so a run never
# rewrites fuzz/Cargo.lock); when Cargo.lock moved, run `scripts/fuzz.sh --sync-lock` and commit
# fuzz/Cargo.lock.
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

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"

# `name version` of every package of a Cargo.lock.
lock_pairs() {
    awk '/^name = /{name=$3} /^version = /{print name, $3}' "$1" | tr -d '"' | sort -u
}

sync_lock() {
    cp "$root/Cargo.lock" "$root/fuzz/Cargo.lock"
    # Drops what the fuzz crate does not use and adds what only it uses (libfuzzer-sys).
    cargo "+$toolchain" metadata --manifest-path "$root/fuzz/Cargo.toml" --format-version 1 >/dev/null
    echo "==> fuzz/Cargo.lock regenerated from Cargo.lock"
}

check_lock() {
    local drift
    drift="$(awk 'NR == FNR { shared[$0] = 1; names[$1] = 1; next } ($1 in names) && !($0 in shared)' \
        <(lock_pairs "$root/Cargo.lock") <(lock_pairs "$root/fuzz/Cargo.lock"))"
    if [ -n "$drift" ]; then
        echo "fuzz/Cargo.lock pins these at other versions than Cargo.lock:" >&2
        echo "$drift" | sed 's/^/    /' >&2
        echo "run: scripts/fuzz.sh --sync-lock   (then commit fuzz/Cargo.lock)" >&2
        exit 2
    fi
    if ! cargo "+$toolchain" metadata --locked --manifest-path "$root/fuzz/Cargo.toml" \
        --format-version 1 >/dev/null; then
        echo "fuzz/Cargo.lock does not match fuzz/Cargo.toml; run: scripts/fuzz.sh --sync-lock" >&2
        exit 2
    fi
}

if [ "${1:-}" = "--sync-lock" ]; then
    sync_lock
    check_lock
    exit 0
fi

seconds="${1:-60}"
shift || true
case "$seconds" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

fuzz_dir="$root/fuzz"
target_dir="$fuzz_dir/target"
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(definition_loader path_router header_helpers jwt_verify credentials basic_auth
        jwks_document introspection_answer cache_control apim_export upstream_response
        request_head)
fi

max_len_for() {
    case "$1" in
        definition_loader | apim_export) echo 65536 ;;
        *) echo 4096 ;;
    esac
}

check_lock

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
