#!/usr/bin/env bash
# Regenerates templates/gateway/Cargo.lock, the lock file generated gateway crates are built with
# (`cargo build --locked`): the workspace's own Cargo.lock pruned to what the gateway crate needs.
# The generated manifest forwards every optional feature of the runtime (storage, ...), so this one
# lock holds their crates too, whichever a project enables. Gateways thus build with exactly the
# dependency versions the test suite ran against. Run it after changing runtime-template/Cargo.toml
# or updating Cargo.lock.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lock() { # <default features array> <output file>
    sed -e 's/{{ toolkit_version }}/lock-update/' \
        -e 's/{{ binary }}/gateway/' \
        -e "s|{{ runtime_path_literal }}|\"$root/runtime-template\"|" \
        -e "s|{{ features }}|$1|" \
        "$root/templates/gateway/Cargo.toml" > "$work/Cargo.toml"
    echo 'fn main() {}' > "$work/main.rs"
    cp "$root/Cargo.lock" "$work/Cargo.lock"
    cargo metadata --format-version 1 --manifest-path "$work/Cargo.toml" > /dev/null
    cp "$work/Cargo.lock" "$root/templates/gateway/$2"
    echo "updated templates/gateway/$2 ($(grep -c '^\[\[package\]\]' "$root/templates/gateway/$2") packages)"
}
lock "[]" Cargo.lock
rm -f "$root/templates/gateway/Cargo.storage.lock" # the per-feature lock of earlier versions
