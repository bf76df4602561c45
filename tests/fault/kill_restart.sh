#!/usr/bin/env bash
# kill -9 recovery of freshrec-stream (file or Kafka source), repeatable: replays a
# generated log once uninterrupted, then again while killing the updater with SIGKILL at K
# seeded random input lines (the --stop-after-events N --crash hook: the process raises
# SIGKILL itself, exactly like `kill -9`, at a line chosen by the seed) and restarting it
# from its checkpoints each time; optionally also E kills by a real `kill -9` from outside
# after a seeded random delay (lands anywhere, checkpoint writes included). The run passes
# when the final state_digest, event count, line count and dead-letter count equal the
# uninterrupted run's: nothing lost, nothing applied twice.
#   usage: tests/fault/kill_restart.sh [--source file|kafka] [--partitions P] [--events N] [--kills K]
#                                      [--external E] [--seed S] [--every C]
#   defaults: file source, 1000000 events, 20 kills, 0 external, seed 7, checkpoint every 25000 lines
# --source kafka: the log is loaded into a P-partition topic (key = user_id) of librdkafka's
# mock cluster, run by freshrec-kafka-mock (built in tests/fault/) in the background. The
# mock keeps only 5 MB of (lz4-compressed) messages a partition, so P defaults to
# max(4, events / 62500) (16 for 1M events); freshrec-kafka-mock fails when the mock
# dropped any, and the uninterrupted run must read every line loaded. The updaters read
# the topic with source.type kafka and --until-eof, which reads the partitions in a fixed
# merge order (lowest next offset first) and stops once every partition was read to its
# end, so "input line p" names the same event in every run (arrival order would make two
# uninterrupted runs differ). The uninterrupted run has its own consumer group and
# checkpoint dir; the killed ones share another group, so a restart starts at max(its
# checkpoint, the group's commit) per partition, as in production.
source "$(dirname "$0")/lib.sh"
EVENTS=1000000 KILLS=20 EXTERNAL=0 SEED=7 EVERY=25000 SOURCE=file PARTITIONS=
while [[ $# -gt 0 ]]; do
  case $1 in
    --events) EVENTS=$2; shift 2 ;; --kills) KILLS=$2; shift 2 ;; --external) EXTERNAL=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;; --every) EVERY=$2; shift 2 ;;
    --source) SOURCE=$2; shift 2 ;; --partitions) PARTITIONS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ "$SOURCE" == file || "$SOURCE" == kafka ]] || { echo "--source: file or kafka, got '$SOURCE'" >&2; exit 2; }
make_shop "$EVENTS"
CK=(--set checkpoint.every_events="$EVERY" --set checkpoint.every_seconds=0)
SRC=() SRC_CLEAN=() SRC_K=() LABEL="file source"
if [[ "$SOURCE" == kafka ]]; then
  MOCK="$BUILD/tests/fault/freshrec-kafka-mock"
  [[ -n "$PARTITIONS" ]] || PARTITIONS=$(( (EVENTS + 62499) / 62500 < 4 ? 4 : (EVENTS + 62499) / 62500 ))
  [[ -x "$MOCK" ]] || { echo "missing $MOCK (build the freshrec-kafka-mock target)" >&2; exit 2; }
  t_load=$SECONDS
  # It prints its bootstrap servers once the log is in; it goes when this script exits
  # (BG_PIDS) or dies (PR_SET_PDEATHSIG).
  "$MOCK" --partitions "$PARTITIONS" --topic freshrec-events --load "$WORK/events.ndjson" \
    >"$WORK/broker.out" 2>"$WORK/broker.err" &
  BG_PIDS+=("$!")
  mock_pid=$!
  for ((i = 0; i < 6000; i++)); do  # up to 10 min for a large log on a loaded machine
    [[ -s "$WORK/broker.out" ]] && break
    kill -0 "$mock_pid" 2>/dev/null || { echo "freshrec-kafka-mock exited:"; cat "$WORK/broker.err"; exit 1; }
    sleep 0.1
  done
  brokers=$(head -n 1 "$WORK/broker.out")
  [[ -n "$brokers" ]] || { echo "freshrec-kafka-mock did not come up:"; cat "$WORK/broker.err"; exit 1; }
  echo "mock cluster $brokers: $(grep -o 'loaded .*' "$WORK/broker.err" || true) in $((SECONDS - t_load)) s"
  # A killed consumer never leaves its group: the restarted one waits for the dead
  # member's session to run out before the group rebalances, so keep it short (above the
  # mock coordinator's 3 s initial-join delay).
  SRC=(--set source.type=kafka --set kafka.brokers="$brokers" --set kafka.topic=freshrec-events
       --set 'kafka.properties={session.timeout.ms: "4000", heartbeat.interval.ms: "100", fetch.wait.max.ms: "10"}')
  SRC_CLEAN=("${SRC[@]}" --set kafka.group_id=fault-clean)
  SRC_K=("${SRC[@]}" --set kafka.group_id=fault-killed)
  LABEL="Kafka source, mock cluster, $PARTITIONS partitions"
  RUN_PREFIX=(timeout 1800)  # a consumer that never gets its partitions fails (124) instead of hanging
fi
t0=$(date +%s.%N)
stream clean "${CK[@]}" "${SRC_CLEAN[@]}" || { echo "uninterrupted run failed:"; cat "$WORK/err-clean.txt"; exit 1; }
t_clean=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
want=$(jstat "$WORK/s-clean.json" "d['state_digest'], d['events'], d['counters']['lines'], d['dead_letters']")
echo "uninterrupted: $want (${t_clean}s)"
if [[ "$SOURCE" == kafka ]]; then
  loaded=$(grep -o 'loaded [0-9]*' "$WORK/broker.err" | grep -o '[0-9]*')
  read_lines=$(jstat "$WORK/s-clean.json" "d['counters']['lines']")
  [[ "$read_lines" == "$loaded" ]] || { echo "the uninterrupted run read $read_lines lines of the $loaded loaded"; exit 1; }
fi

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
    "${CK[@]}" "${SRC_K[@]}" >/dev/null 2>>"$WORK/err-ext.txt" &
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
  rc=0; stream k "${CK[@]}" "${SRC_K[@]}" --stop-after-events "$n" --crash || rc=$?
  [[ $rc -eq 137 ]] || { echo "kill at line $p: expected SIGKILL (137), got $rc"; cat "$WORK/err-k.txt"; exit 1; }
  kills=$((kills + 1)); restarts=$((restarts + 1))
  echo "killed at input line $p (resumed from $from)"
done
stream k "${CK[@]}" "${SRC_K[@]}" || { echo "final run failed:"; cat "$WORK/err-k.txt"; exit 1; }
got=$(jstat "$WORK/s-k.json" "d['state_digest'], d['events'], d['counters']['lines'], d['dead_letters']")
echo "after $kills kills: $got"
if [[ "$got" == "$want" ]]; then
  row "kill -9 of the updater during a ${EVENTS}-event replay ($LABEL)" "$kills kills, $restarts restarts" \
    "final state_digest identical; events lost 0, applied twice 0; crashes on restart 0"
else
  row "kill -9 of the updater during a ${EVENTS}-event replay ($LABEL)" "$kills kills" "DIGEST MISMATCH: $got vs $want"
  exit 1
fi
