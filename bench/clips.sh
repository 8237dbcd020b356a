#!/usr/bin/env bash
# Event clips (bench/src/clips.rs): the CPU and memory making clips adds to the agent
# reading a 720p 15 fps camera, against the stream's bytes of a pre-roll; then motion to mail
# through the relay without and with clips, and the bytes clips cost the home's uplink.
# Release builds. Not part of CI.
#   bench/clips.sh [SECONDS] [EVENTS]   (defaults 40 s each way, then 15 crossings each way
#   through the relay, for motion to mail and the upstream bytes)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
cargo build --release --locked -p eyeward-relay -p eyeward-agent -p eyeward-bench
target/release/clips "${1:-40}" "${2:-15}"
