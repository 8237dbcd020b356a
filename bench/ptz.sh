#!/usr/bin/env bash
# Pan-tilt command latency on release builds (bench/src/ptz_latency.rs): a press of the live
# view's arrow in Chromium to the simulated camera's move starting, as the simulator logs it,
# through the relay and the agent's link; and ContinuousMove sent straight to the camera as
# the floor. Inside a loopback-only network namespace. Not part of CI.
#   bench/ptz.sh [PRESSES]   (default 40)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
cargo build --release --locked -p eyeward-relay -p eyeward-agent -p eyeward-bench
exec unshare --net sh -c 'ip link set lo up && exec target/release/ptz-latency "$@"' ptz-latency "${1:-40}"
