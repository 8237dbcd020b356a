#!/usr/bin/env bash
# Fuzzes each of eyeward's parsers for a while with cargo fuzz (libFuzzer), keeping what it
# finds: new inputs go to fuzz/corpus/<target>/ (minimised), crashes to
# fuzz/artifacts/<target>/. Once a crash is fixed, copy its input to
# fuzz/regressions/<target>/: tests/fuzz_corpora.rs replays both folders in .ci/run.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, every target)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi
# Sanitizer flags are unstable options of rustc; this machine has the stable toolchain only.
export RUSTC_BOOTSTRAP=1
status=0
for target in "${targets[@]}"; do
  echo "== $target: ${seconds}s" >&2
  mkdir -p "fuzz/corpus/$target"
  if ! (cd fuzz && cargo fuzz run "$target" "corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1); then
    echo "!! $target found a crash: see fuzz/artifacts/$target/" >&2
    status=1
  fi
  (cd fuzz && cargo fuzz cmin "$target" "corpus/$target" >/dev/null 2>&1) || true
done
exit $status
