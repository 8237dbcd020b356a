#!/usr/bin/env bash
# Backups of a serving relay on release builds (issue 27): a relay filled with EVENTS events
# with pictures (default 100000), then ingest p95 and /healthz p99 under a steady load alone,
# during a first backup and during a second (incremental) one; the backups' time and
# throughput. Needs a few GB in $TMPDIR. Not part of CI.
#   bench/backup.sh [EVENTS] [MAX_RATE]   (MAX_RATE: the backup's --max-rate in MB/s, 0: none)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
cargo build --release --locked -p eyeward-relay -p eyeward-bench
target/release/backup "${1:-100000}" ${2:+"$2"}
