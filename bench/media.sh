#!/usr/bin/env bash
# Transcoding (bench/src/media.rs): what each transcode costs the relay for one 720p15 camera
# (H.264 to VP8, AAC to Opus, H.265 to H.264; and H.265 passed through), how soon each path
# shows its first frame, and talkback's mouth to camera. Release builds, in a loopback-only network namespace. Not part of CI.
#   bench/media.sh [--seconds 20] [--joins 8] [--presses 10]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh bench
cargo build --release --locked -p eyeward-relay -p eyeward-agent -p eyeward-bench
exec unshare --net sh -c 'ip link set lo up && exec target/release/media "$@"' media "$@"
