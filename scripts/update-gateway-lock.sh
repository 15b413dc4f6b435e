#!/usr/bin/env bash
# Regenerates templates/gateway/Cargo.lock, the lock file every generated gateway crate is built
# with (`cargo build --locked`). It is the workspace's own Cargo.lock pruned to what the runtime
# needs, so gateways build with exactly the dependency versions the test suite ran against.
# Run it after changing runtime-template/Cargo.toml or updating Cargo.lock.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -e 's/{{ toolkit_version }}/lock-update/' \
    -e 's/{{ binary }}/gateway/' \
    -e "s|{{ runtime_path_literal }}|\"$root/runtime-template\"|" \
    -e "s|{{ features }}|, features = [\"storage\"]|" \
    "$root/templates/gateway/Cargo.toml" > "$work/Cargo.toml"
echo 'fn main() {}' > "$work/main.rs"
cp "$root/Cargo.lock" "$work/Cargo.lock"
cargo metadata --format-version 1 --manifest-path "$work/Cargo.toml" > /dev/null
cp "$work/Cargo.lock" "$root/templates/gateway/Cargo.lock"
echo "updated templates/gateway/Cargo.lock ($(grep -c '^\[\[package\]\]' "$root/templates/gateway/Cargo.lock") packages)"
