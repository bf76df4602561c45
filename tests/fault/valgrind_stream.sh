#!/usr/bin/env bash
# Leak check of a short freshrec-stream run under valgrind (memcheck): checkpoints, a
# restart from one and dead letters. valgrind 3.19 cannot decode AVX-512, so
# the binaries come from their own build without -march=native (FRESHREC_NATIVE=OFF,
# RelWithDebInfo) in build-valgrind/, configured and built on first use (3 targets).
# Fails on any definite or indirect leak and on any memcheck error.
#   usage: tests/fault/valgrind_stream.sh [--events N] (default 5000)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VBUILD=${VALGRIND_BUILD:-$ROOT/build-valgrind}
EVENTS=5000
[[ "${1:-}" == "--events" ]] && EVENTS=$2
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
if [[ ! -f "$VBUILD/build.ninja" ]]; then
  cmake -S "$ROOT" -B "$VBUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFRESHREC_NATIVE=OFF -DFRESHREC_CUDA=OFF \
    -DFRESHREC_BUILD_TESTS=OFF -DFRESHREC_BUILD_BENCH=OFF >/dev/null
fi
ninja -C "$VBUILD" freshrec-stream freshrec-generate freshrec-train >/dev/null
export FRESHREC_BUILD=$VBUILD
source "$(dirname "$0")/lib.sh"
make_shop "$EVENTS" 1000 400
head -n $((EVENTS / 2)) "$WORK/events.ndjson" >"$WORK/first.ndjson"
printf '{"broken\n{"user_id":"u1","item_id":"i1","event_type":"teleport","timestamp":1}\n' >>"$WORK/first.ndjson"
VG=(valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
    --error-exitcode=99 --num-callers=30)
status=0
run_vg() {  # run_vg <tag> <source> [args…]
  local tag=$1 src=$2; shift 2
  local rc=0
  RUN_PREFIX=("${VG[@]}" --log-file="$WORK/vg-$tag.txt")
  stream "$tag" --set source.path="$src" --set checkpoint.dir="$WORK/ck-vg" --set checkpoint.every_events=1000 "$@" || rc=$?
  RUN_PREFIX=()
  local defl indl
  defl=$(grep -c "definitely lost" "$WORK/vg-$tag.txt" || true)
  indl=$(grep -c "indirectly lost" "$WORK/vg-$tag.txt" || true)
  echo "  valgrind $tag: exit $rc; memcheck reports: $(grep -c '^==' "$WORK/vg-$tag.txt" || true) lines"
  if [[ $rc -ne 0 ]]; then
    status=1; head -n 60 "$WORK/vg-$tag.txt"; cat "$WORK/err-$tag.txt" | head -n 5
  fi
}
# First half (with two dead letters), then the rest appended and a restart from the checkpoint.
run_vg first "$WORK/first.ndjson"
sed -n "$((EVENTS / 2 + 1)),\$p" "$WORK/events.ndjson" >>"$WORK/first.ndjson"
run_vg second "$WORK/first.ndjson"
if [[ $status -eq 0 ]]; then
  row "valgrind memcheck of two short freshrec-stream runs ($EVENTS events, checkpoint restore, dead letters)" 2 \
    "definitely lost 0, indirectly lost 0, memcheck errors 0"
else
  row "valgrind memcheck of freshrec-stream" 2 "FINDINGS: see the output above"
fi
exit $status
