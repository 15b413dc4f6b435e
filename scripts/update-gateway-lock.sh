#!/usr/bin/env bash
# Regenerates the lock files generated gateway crates are built with (`cargo build --locked`):
# templates/gateway/Cargo.lock for projects on the runtime's default features, and
# templates/gateway/Cargo.storage.lock for projects that enable its `storage` feature (Kargo's
# storage plugin; cargo resolves a path dependency's optional crates only when their feature is
# on, so one lock cannot serve both). Each is the workspace's own Cargo.lock pruned to what the
# runtime needs with those features, so gateways build with exactly the dependency versions the
# test suite ran against. Run it after changing runtime-template/Cargo.toml or updating Cargo.lock.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lock() { # <features literal> <output file>
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
lock "" Cargo.lock
lock ', features = ["storage"]' Cargo.storage.lock
