# Shared helpers of the tests/fault scripts (sourced, not run).
#   FRESHREC_BUILD   build dir holding pipelines/freshrec-{generate,train,stream} (default build)
#   STREAM_CONFIG    updater config (default configs/stream.yaml)
#   NIGHTLY_CONFIG   trainer config (default configs/nightly.yaml)
#   KEEP_WORK=1      keep the scratch directory for inspection
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${FRESHREC_BUILD:-build}
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
BIN="$BUILD/pipelines"
STREAM_CONFIG=${STREAM_CONFIG:-$ROOT/configs/stream.yaml}
NIGHTLY_CONFIG=${NIGHTLY_CONFIG:-$ROOT/configs/nightly.yaml}
for b in freshrec-generate freshrec-train freshrec-stream; do
  [[ -x "$BIN/$b" ]] || { echo "missing $BIN/$b (build first, or set FRESHREC_BUILD)" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/freshrec_fault_XXXXXX)
BG_PIDS=()  # background updaters a script started: killed on exit
cleanup_work() {
  local m p
  for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for m in $(awk -v w="$WORK" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r); do umount "$m" 2>/dev/null || true; done
  [[ "${KEEP_WORK:-0}" == 1 ]] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup_work EXIT

# make_shop <events> [users] [items]: $WORK/events.ndjson and a nightly model in $WORK/models.
make_shop() {
  local events=$1 users=${2:-5000} items=${3:-2000}
  "$BIN/freshrec-generate" -o "$WORK/events.ndjson" -n "$events" -u "$users" -i "$items" >/dev/null 2>&1
  "$BIN/freshrec-train" --config "$NIGHTLY_CONFIG" --quiet --set data.format=ndjson \
    --set data.path="$WORK/events.ndjson" --set output.dir="$WORK/models" --set eval.enabled=false \
    --set train.iterations=3 >/dev/null 2>&1
}

# stream <tag> [args…]: one updater run over $WORK/events.ndjson; stats in $WORK/s-<tag>.json,
# stderr in $WORK/err-<tag>.txt; returns the exit code.
# RUN_PREFIX (an array, default empty) goes in front of the binary: /usr/bin/time, valgrind.
RUN_PREFIX=()
stream() {
  local tag=$1; shift
  "${RUN_PREFIX[@]}" "$BIN/freshrec-stream" --config "$STREAM_CONFIG" --until-eof --quiet --set model.dir="$WORK/models" \
    --set source.path="$WORK/events.ndjson" --set checkpoint.dir="$WORK/ck-$tag" \
    --set dead_letter.path="$WORK/dl-$tag.ndjson" \
    --stats-out "$WORK/s-$tag.json" "$@" >/dev/null 2>"$WORK/err-$tag.txt"
}

# jstat <file> <python expression on d>: prints a field of a stats JSON.
jstat() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# row <fault> <tries> <outcome>: one line of the fault table (also to $FAULT_TABLE if set).
row() {
  printf '| %s | %s | %s |\n' "$1" "$2" "$3"
  [[ -n "${FAULT_TABLE:-}" ]] && printf '| %s | %s | %s |\n' "$1" "$2" "$3" >>"$FAULT_TABLE"
  return 0
}
