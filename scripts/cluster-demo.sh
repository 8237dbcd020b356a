#!/usr/bin/env bash
# Starts the cluster demo: PostgreSQL, Garage (S3), HAProxy and three relay nodes as one
# service, all on loopback, and a demo customer's simulated pan-tilt and fixed cameras whose
# agents link through the load balancer; prints the logins and each node's pid (kill -9 one
# to watch its cameras come back through the others). Runs until Ctrl-C. See
# bench/src/cluster_demo.rs and docs/cluster.md.
#   EYEWARD_DEMO_DIR=./cluster-demo-data  where the nodes keep their configs and logs
#   EYEWARD_DEMO_PROFILE=release          cargo profile to build (debug builds faster)
#   EYEWARD_DEMO_CHECK=1                  start, check that the customer sees both cameras
#                                         online through the load balancer, and stop
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh cluster

dir=${EYEWARD_DEMO_DIR:-./cluster-demo-data}
profile=${EYEWARD_DEMO_PROFILE:-release}
# The whole workspace. A debug build is the tests' own build (scripts/test.sh builds the
# binaries with the test binaries, whose dev-dependencies turn features on): the same
# features, so nothing is built twice.
if [ "$profile" = release ]; then
  cargo build --release --locked --workspace --bins
  bin=target/release
else
  cargo build --locked --workspace --bins --tests
  bin=target/debug
fi
# A fresh folder each run: the servers' data lives in temporary folders that end with it.
rm -rf "$dir"
args=(--dir "$dir")
[ -z "${EYEWARD_DEMO_CHECK:-}" ] || args+=(--check)
exec "$bin/cluster-demo" "${args[@]}"
