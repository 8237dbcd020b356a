#!/usr/bin/env bash
# Motion to mail on release builds: from the simulated intruder's entry to the alert mail
# accepted by a real SMTP server, p50 and p95, and where the time goes. Not part of CI.
#   bench/mail.sh [EVENTS]   (default 20, one every 8 s)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
cargo build --release --locked -p eyeward-relay -p eyeward-agent -p eyeward-bench
target/release/alert-latency "${1:-20}"
