#!/usr/bin/env bash
# The motion detector's benchmark on release builds: labelled clips made at run time, the
# detector's cost per pixel, and the whole agent's CPU and memory against a bare GStreamer
# decode. Not part of CI.
#   bench/motion.sh [SECONDS_TO_MEASURE_THE_AGENT]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo
cargo build --release --locked -p eyeward-relay -p eyeward-agent -p eyeward-bench
target/release/motion-detection "${1:-20}"
