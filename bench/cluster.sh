#!/usr/bin/env bash
# Several relay nodes as one service on release builds (issue 21): three nodes behind HAProxy
# on PostgreSQL and Garage against one node alone, same machine and run. Idle linked cameras
# per node (CPU and memory each), events per second, the first video frame through a node that
# does not hold the camera against the one that does, failover after kill -9; a chart of the
# agents coming back. Runs in a network namespace with loopback only. Not part of CI.
#   bench/cluster.sh [CAMERAS] [SECONDS]   (default 300 idle cameras, 20 s per measure)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
cargo build --release --locked -p eyeward-relay -p eyeward-agent -p eyeward-bench
unshare --net sh -c 'ip link set lo up && exec "$0" "$@"' target/release/cluster \
  --cameras "${1:-300}" --seconds "${2:-20}" --svg docs/bench-cluster.svg
