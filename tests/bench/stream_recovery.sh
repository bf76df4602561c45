#!/usr/bin/env bash
# End-to-end recovery check of the freshrec-stream binary: generate a log, train a
# nightly model, replay the log uninterrupted, then replay it again killed with SIGKILL
# at several points (--stop-after-events N --crash) and restarted from its checkpoints;
# every final state_digest must equal the uninterrupted one.
#   usage: tests/bench/stream_recovery.sh [build-dir] [events]
set -euo pipefail
BUILD=${1:-build}
EVENTS=${2:-200000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/$BUILD/pipelines"
WORK=$(mktemp -d /tmp/freshrec_recovery_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
"$BIN/freshrec-generate" -o events.ndjson -n "$EVENTS" -u 5000 -i 2000 >/dev/null
"$BIN/freshrec-train" --config "$ROOT/configs/nightly.yaml" --quiet --set data.format=ndjson \
  --set data.path=events.ndjson --set output.dir=models --set eval.enabled=false --set train.iterations=5 >/dev/null
run() {  # run <tag> [extra args…]
  local tag=$1; shift
  "$BIN/freshrec-stream" --config "$ROOT/configs/stream.yaml" --until-eof --quiet --set model.dir=models \
    --set source.path=events.ndjson --set checkpoint.dir="ck-$tag" --set checkpoint.every_events=25000 \
    --set dead_letter.path="dl-$tag.ndjson" --stats-out "s-$tag.json" "$@" 2>/dev/null
}
digest() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['state_digest'])" "$1"; }
run clean
want=$(digest s-clean.json)
echo "uninterrupted: $want"
status=0
for kill_at in 1000 $((EVENTS / 3)) $((EVENTS * 2 / 3 + 7)); do
  run "k$kill_at" --stop-after-events "$kill_at" --crash || true  # dies by SIGKILL (137)
  run "k$kill_at"
  got=$(digest "s-k$kill_at.json")
  if [[ "$got" == "$want" ]]; then echo "killed at $kill_at: same digest"; else echo "killed at $kill_at: DIFFERENT $got"; status=1; fi
done
exit $status
