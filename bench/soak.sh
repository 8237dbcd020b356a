#!/usr/bin/env bash
# Soak on release builds (bench/src/soak.rs): 10 simulated cameras behind their agents, 50
# WebRTC viewers joining and leaving all the time, 5 motion events a second each mailed to a
# real SMTP server, for MINUTES; the relay's memory, file descriptors and threads over time
# (flat after warm-up), errors, and every event and mail accounted for. Inside a network
# namespace of its own with loopback only, so no packet leaves the machine. Not part of CI,
# which runs a one-minute soak on each backend on the debug builds (scripts/test.sh).
#   bench/soak.sh [MINUTES] [more soak flags: --viewers N --cameras N --events-per-second R --seed N
#                 --backend embedded|postgres-s3 --check]
#   (default 10 minutes; writes the curves to docs/soak.svg)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
cargo build --release --locked -p eyeward-relay -p eyeward-agent -p eyeward-bench
minutes="${1:-10}"
shift || true
exec unshare --net sh -c 'ip link set lo up && exec target/release/soak --svg docs/soak.svg "$@"' \
  soak --minutes "$minutes" "$@"
