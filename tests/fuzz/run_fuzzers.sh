#!/usr/bin/env bash
# Builds the libFuzzer targets (the `sanitize` preset: clang 14, ASan + UBSan) and runs each
# for a fixed time on a scratch copy of its seed corpus in tests/fuzz/corpus/<target>/.
# A crash, leak, sanitizer report, timeout (10 s an input) or out-of-memory (2 GB) leaves
# its input in the artifacts directory and fails the run; turn each one into a regression
# test in tests/unit/hostile_input_test.cpp and fix it.
#   usage: tests/fuzz/run_fuzzers.sh [seconds per target (60)] [target…]
#   env:   FUZZ_NO_BUILD=1 (run what is built)  FUZZ_BUILD (build-sanitize)  FUZZ_ARTIFACTS (/tmp/freshrec-fuzz-artifacts)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECONDS_EACH=${1:-60}
shift || true
BUILD=${FUZZ_BUILD:-$ROOT/build-sanitize}
ARTIFACTS=${FUZZ_ARTIFACTS:-/tmp/freshrec-fuzz-artifacts}
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(ndjson-event log-file config npy snapshot checkpoint http-request)
cd "$ROOT"
[[ -f "$BUILD/build.ninja" ]] || cmake --preset sanitize -B "$BUILD" >/dev/null
[[ "${FUZZ_NO_BUILD:-0}" == 1 ]] || ninja -C "$BUILD" "${TARGETS[@]/#/freshrec-fuzz-}" >/dev/null
mkdir -p "$ARTIFACTS"
status=0
printf '%-14s %8s %10s %8s  %s\n' target seconds execs/s corpus result
for t in "${TARGETS[@]}"; do
  work=$(mktemp -d /tmp/freshrec-fuzz-corpus-XXXXXX)
  cp -r "$ROOT/tests/fuzz/corpus/$t/." "$work/"
  log="$ARTIFACTS/$t.log"
  max_len=4096
  [[ $t == log-file || $t == checkpoint || $t == config || $t == http-request ]] && max_len=16384
  rc=0
  # -close_fd_mask=3: the targets' own error output would drown the fuzzer's status lines.
  "$BUILD/tests/fuzz/freshrec-fuzz-$t" "$work" -max_total_time="$SECONDS_EACH" -max_len=$max_len \
    -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 -close_fd_mask=3 \
    -artifact_prefix="$ARTIFACTS/$t-" >"$log" 2>&1 || rc=$?
  execs=$(grep -a 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  per_s=$(( ${execs:-0} / (SECONDS_EACH > 0 ? SECONDS_EACH : 1) ))
  units=$(ls "$work" | wc -l)
  if [[ $rc -eq 0 ]]; then result=ok; else result="FAILED (rc $rc; see $log, artifacts $ARTIFACTS/$t-*)"; status=1; fi
  printf '%-14s %8s %10s %8s  %s\n' "$t" "$SECONDS_EACH" "$per_s" "$units" "$result"
  rm -rf "$work"
done
exit $status
