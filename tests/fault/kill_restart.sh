#!/usr/bin/env bash
# kill -9 recovery of freshrec-stream (file source), repeatable: replays a generated log
# once uninterrupted, then again while killing the updater with SIGKILL at K seeded
# random input lines (the --stop-after-events N --crash hook: the process raises SIGKILL
# itself, exactly like `kill -9`, at a line chosen by the seed) and restarting it from its
# checkpoints each time; optionally also E kills by a real `kill -9` from outside after a
# seeded random delay (lands anywhere, checkpoint writes included). The run passes when
# the final state_digest, event count, line count and dead-letter count equal the
# uninterrupted run's: nothing lost, nothing applied twice.
#   usage: tests/fault/kill_restart.sh [--events N] [--kills K] [--external E] [--seed S] [--every C]
#   defaults: 1000000 events, 20 kills, 0 external, seed 7, checkpoint every 25000 lines
source "$(dirname "$0")/lib.sh"
EVENTS=1000000 KILLS=20 EXTERNAL=0 SEED=7 EVERY=25000
while [[ $# -gt 0 ]]; do
  case $1 in
    --events) EVENTS=$2; shift 2 ;; --kills) KILLS=$2; shift 2 ;; --external) EXTERNAL=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;; --every) EVERY=$2; shift 2 ;; *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
make_shop "$EVENTS"
CK=(--set checkpoint.every_events="$EVERY" --set checkpoint.every_seconds=0)
t0=$(date +%s.%N)
stream clean "${CK[@]}"
t_clean=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
want=$(jstat "$WORK/s-clean.json" "d['state_digest'], d['events'], d['counters']['lines'], d['dead_letters']")
echo "uninterrupted: $want (${t_clean}s)"

# The input line the newest checkpoint of ck-k resumes after (0 when there is none).
resume_line() {
  local newest
  newest=$(ls "$WORK/ck-k"/checkpoint-*.ckpt 2>/dev/null | sort | tail -n 1)
  [[ -z "$newest" ]] && { echo 0; return; }
  sed -n 2p "$newest" | python3 -c "import json,sys; print(json.load(sys.stdin)['counters']['lines'])"
}

kills=0 restarts=0
# Real kill -9 from outside at seeded random delays (checkpoint writes included).
delays=$(python3 -c "import random; r=random.Random($SEED + 1); print(' '.join('%.2f' % r.uniform(0.05, max(0.1, $t_clean * 0.15)) for _ in range($EXTERNAL)))")
for d in $delays; do
  "$BIN/freshrec-stream" --config "$STREAM_CONFIG" --until-eof --quiet --set model.dir="$WORK/models" \
    --set source.path="$WORK/events.ndjson" --set checkpoint.dir="$WORK/ck-k" --set dead_letter.path="$WORK/dl-k.ndjson" \
    "${CK[@]}" >/dev/null 2>>"$WORK/err-ext.txt" &
  pid=$!
  BG_PIDS+=("$pid")
  sleep "$d"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); echo "kill -9 after ${d}s (resumed from $(resume_line) at the next start)"; fi
  wait "$pid" 2>/dev/null || true
  restarts=$((restarts + 1))
done
points=$(python3 -c "import random; r=random.Random($SEED); print(' '.join(map(str, sorted(r.sample(range(1, $EVENTS), $KILLS)))))")
for p in $points; do
  from=$(resume_line)
  n=$((p - from)); ((n < 1)) && n=1
  rc=0; stream k "${CK[@]}" --stop-after-events "$n" --crash || rc=$?
  [[ $rc -eq 137 ]] || { echo "kill at line $p: expected SIGKILL (137), got $rc"; cat "$WORK/err-k.txt"; exit 1; }
  kills=$((kills + 1)); restarts=$((restarts + 1))
  echo "killed at input line $p (resumed from $from)"
done
stream k "${CK[@]}"
got=$(jstat "$WORK/s-k.json" "d['state_digest'], d['events'], d['counters']['lines'], d['dead_letters']")
echo "after $kills kills: $got"
if [[ "$got" == "$want" ]]; then
  row "kill -9 of the updater during a ${EVENTS}-event replay (file source)" "$kills kills, $restarts restarts" \
    "final state_digest identical; events lost 0, applied twice 0; crashes on restart 0"
else
  row "kill -9 of the updater during a ${EVENTS}-event replay (file source)" "$kills kills" "DIGEST MISMATCH: $got vs $want"
  exit 1
fi
