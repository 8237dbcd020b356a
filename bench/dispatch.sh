#!/usr/bin/env bash
# The guard-center console under load on release builds (bench/src/dispatch_console.rs):
# OPEN open dispatch requests over the three centers, the console's list answer time against
# GET /healthz as the floor, and ASKS requests timed from the customer's POST to the
# operator's live console stream carrying them. Loopback only. Not part of CI.
#   bench/dispatch.sh [OPEN] [ASKS]   (default 1000 50)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p eyeward-relay -p eyeward-bench
exec target/release/dispatch-console "${1:-1000}" "${2:-50}"
