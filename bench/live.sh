#!/usr/bin/env bash
# Live video, eyeward against Janus (bench/src/live_video.rs): release builds, Janus and
# Chromium installed, everything inside a network namespace of its own so that all WebRTC
# traffic stays on this machine. Not part of CI. Writes the curves to docs/live-video.svg.
#   bench/live.sh [--viewers 1,10,50,100,200] [--seconds 10] [--joins 20]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh bench
cargo build --release --locked -p eyeward-relay -p eyeward-agent -p eyeward-bench
# Inside the namespace: loopback, and a veth pair whose address (10.99.0.1) is local to the
# namespace, because Janus gathers no ICE candidates on loopback.
exec unshare --net sh -c '
  # Hundreds of viewers: a socket each in the load client, and in Janus.
  ulimit -n "$(ulimit -Hn)"
  ip link set lo up
  ip link add bench0 type veth peer name bench1
  ip addr add 10.99.0.1/24 dev bench0
  ip link set bench0 up && ip link set bench1 up
  exec target/release/live-video --svg docs/live-video.svg "$@"' live-video "$@"
