#!/usr/bin/env bash
# The relay under abuse on release builds (bench/src/abuse.rs): 1,000 logins at once, 48 flat
# 8K JPEG uploads at once, 2,000 connections that never finish their headers; the relay's
# peak memory and /healthz p50/p99 during each against the relay at rest, and whether an
# honest viewer's video goes on. Inside a network namespace of its own with loopback only,
# so no packet leaves the machine. Not part of CI.
#   bench/abuse.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
cargo build --release --locked -p eyeward-relay -p eyeward-agent -p eyeward-bench
exec unshare --net sh -c 'ip link set lo up && exec target/release/abuse'
