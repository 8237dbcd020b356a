#!/usr/bin/env bash
# Runs eyeward's benchmarks on release builds and prints their figures. Not part of CI.
#   bench/run.sh [SECONDS_PER_PHASE]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo
cargo build --release --locked -p eyeward-relay -p eyeward-agent -p eyeward-bench
target/release/link-upstream "${1:-20}"
