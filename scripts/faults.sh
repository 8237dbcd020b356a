#!/usr/bin/env bash
# The fault scenarios at full length, with their figures: 20 kill -9s of the relay and the
# agent at random moments (EYEWARD_KILLS), a 60 s cut of a link with 20% loss and 500 ms each
# way (EYEWARD_CUT_SECS), the relay outage with an agent crash, a full disk, a busy database,
# the mail server down across a relay crash, and panics in a feed, a viewer and a link. .ci/run
# runs the same tests with shorter faults.
#
#   scripts/faults.sh            (EYEWARD_KILL_SEED=N replays one run's kill moments)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
cargo build --workspace --locked
export EYEWARD_KILLS=${EYEWARD_KILLS:-20} EYEWARD_CUT_SECS=${EYEWARD_CUT_SECS:-60}
start=$(date +%s)
cargo test --locked --test snapshot_delivery --test panics_are_contained \
  --test alert_mail -- --nocapture --test-threads 1 \
  every_snapshot kill_nines a_link_with a_full_disk a_busy_database a_lossy \
  queued_alerts_survive a_panic_ends 2>&1 |
  grep -E '^test |kill moments|kills:|snapshots arrived|test result'
echo "faults: $(( $(date +%s) - start )) s in all"
