#!/usr/bin/env bash
# Event clips on the agent (bench/src/clips.rs): the CPU and memory making clips adds to the
# agent reading a 720p 15 fps camera, against the stream's bytes of a pre-roll. Release
# builds. Not part of CI.
#   bench/clips.sh [SECONDS]   (default 40, each way)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo
cargo build --release --locked -p eyeward-agent -p eyeward-bench
target/release/clips "${1:-40}"
