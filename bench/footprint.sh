#!/usr/bin/env bash
# The agent as built for a camera (no simulator) against its default build: binary size,
# memory and CPU on the same camera in the same run. Not part of CI.
#   bench/footprint.sh [SECONDS]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo
cargo build --release --locked -p eyeward-relay -p eyeward-agent -p eyeward-bench
# Its own target folder, so the default build in target/release stays the default.
cargo build --release --locked -p eyeward-agent --no-default-features --target-dir target/camera-build
target/release/agent-footprint "${1:-20}" target/camera-build/release/eyeward-agent
