#!/usr/bin/env bash
# The relay's two storage backends on release builds, same machine and run (issue 20): SQLite
# and files against PostgreSQL and S3 (Garage), three rounds at 16 and 32 uploads at once: ingest
# p50/p95 and events per second, the console's list p95, motion to mail p95. Not part of CI.
#   bench/storage.sh [SECONDS]   (default 20 seconds of ingest per backend, level and round)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
cargo build --release --locked -p eyeward-relay -p eyeward-bench
target/release/storage "${1:-20}"
