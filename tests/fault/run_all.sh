#!/usr/bin/env bash
# Every fault-injection and hostile-input check at full size, one after the other, and
# the fault table they measure (also written to $FAULT_TABLE, default
# /tmp/freshrec-fault-table.md). Takes tens of minutes on 2 cores; CI runs the short
# versions (ctest -L fault, and the sanitizer and fuzz steps of .ci/run).
#   usage: tests/fault/run_all.sh [build dir (build)]   env: FUZZ_SECONDS (60; 0 = skip fuzzing)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export FRESHREC_BUILD=${1:-${FRESHREC_BUILD:-build}}
export FAULT_TABLE=${FAULT_TABLE:-/tmp/freshrec-fault-table.md}
printf '| fault or hostile input | tries | outcome |\n|---|---|---|\n' >"$FAULT_TABLE"
status=0
step() {
  echo "== $*"
  local t0=$SECONDS
  "$@" || { echo "!! FAILED: $*"; status=1; }
  echo "   ($((SECONDS - t0)) s)"
}
step bash "$ROOT/tests/fault/kill_restart.sh" --events 1000000 --kills 20 --external 5
step bash "$ROOT/tests/fault/kill_restart.sh" --source kafka --events 1000000 --kills 20
step bash "$ROOT/tests/fault/corrupt_artifacts.sh" --events 100000
step bash "$ROOT/tests/fault/disk_faults.sh" --events 100000
step bash "$ROOT/tests/fault/hostile_inputs.sh" --repeat 1000 --line-mb 1024 --users 10000000
step bash "$ROOT/tests/fault/valgrind_stream.sh" --events 5000
step bash "$ROOT/tests/fault/soak.sh"
if [[ "${FUZZ_SECONDS:-60}" != 0 ]]; then
  if step bash "$ROOT/tests/fuzz/run_fuzzers.sh" "${FUZZ_SECONDS:-60}"; then
    printf '| %s | %s | %s |\n' "libFuzzer, 6 targets (NDJSON event, log files, YAML configs, .npy, snapshot, checkpoint + engine state)" \
      "${FUZZ_SECONDS:-60} s each" "crashes 0, sanitizer reports 0" >>"$FAULT_TABLE"
  fi
fi
echo
cat "$FAULT_TABLE"
exit $status
