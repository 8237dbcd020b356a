#!/usr/bin/env bash
# Runs every check and test of eyeward, installing what is missing first. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test

echo "== cargo fmt" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests run the real binaries: build them first.
echo "== cargo build" >&2
cargo build --workspace --locked
echo "== cargo test" >&2
cargo test --workspace --locked
