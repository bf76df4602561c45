#!/usr/bin/env bash
# Soak (issue 7, item 5): DURATION seconds of HTTP ingestion (freshrec-replay at RATE
# events/s into POST /v1/events) plus wrk on GET /v1/recommend, against one freshrec-stream
# with checkpoints on. wrk runs in CHUNK-second rounds so the latency can be compared over
# time; RSS and tracked users are sampled every 5 s. Fails (exit 1) on any wrk error, on RSS
# growing by more than 15% between the end of warm-up (WARMUP s) and the end beyond 2 KB per
# user first tracked in that time (state the cap bounds), or on a round's p99 more than
# 3x the first post-warm-up round's (shared machines are noisy: the bound catches drift, not
# jitter). Prints one fault-table row.
#   usage: tests/fault/soak.sh      knobs: DURATION=600 WARMUP=120 CHUNK=60 RATE=20000 CONNS=8
#          ITEMS=100000 USERS=100000 FACTORS=64 FRESHREC_BUILD=build
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-600} WARMUP=${WARMUP:-120} CHUNK=${CHUNK:-60} RATE=${RATE:-20000} CONNS=${CONNS:-8}
ITEMS=${ITEMS:-100000} USERS=${USERS:-100000} FACTORS=${FACTORS:-64}
CUTOFF=1700000000
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)"; exit 2; }
ninja -C "$BUILD" freshrec-stream freshrec-replay freshrec-generate serve_latency_bench >/dev/null
HELPER="$BUILD/tests/bench/serve_latency_bench"
cd "$WORK"
"$HELPER" model --models models --items "$ITEMS" --users "$USERS" --factors "$FACTORS" --cutoff "$CUTOFF" >/dev/null
EVENTS=$((RATE * (DURATION + 30)))
"$BUILD/pipelines/freshrec-generate" -o events.ndjson -n "$EVENTS" -u "$USERS" -i "$ITEMS" --start-time $((CUTOFF + 60)) \
  --days 30 >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BUILD/pipelines/freshrec-stream" --config "$ROOT/configs/stream.yaml" --quiet --set model.dir=models \
  --set model.poll_ms=0 --set source.type=http --set http.enabled=true --set http.port="$PORT" \
  --set http.journal="$WORK/journal.ndjson" --set checkpoint.dir="$WORK/ckpt" --set checkpoint.every_seconds=30 \
  --set dead_letter.path="$WORK/dl.ndjson" --set stats.interval_seconds=0 --set redis.url= >stream.log 2>&1 &
STREAM_PID=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat stream.log; kill $STREAM_PID; exit 1; }
cat >recommend.lua <<LUA
math.randomseed(7)
request = function()
  return wrk.format("GET", "/v1/recommend?user_id=u" .. math.random(0, ${USERS} - 1) .. "&k=10")
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK requests=%d p50_ms=%.3f p99_ms=%.3f errors=%d\n", summary.requests,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, e.connect + e.read + e.write + e.status + e.timeout))
end
LUA
"$BUILD/pipelines/freshrec-replay" events.ndjson --http "http://127.0.0.1:$PORT" --rate "$RATE" --batch 500 \
  --progress 0 --summary-json replay.json >replay.log 2>&1 &
REPLAY_PID=$!
( while kill -0 $STREAM_PID 2>/dev/null; do
    tracked=$(curl -s --max-time 2 "http://127.0.0.1:$PORT/metrics" | awk '$1=="freshrec_tracked_users" {print $2}')
    echo "$(date +%s) $(awk '/VmRSS/ {print $2}' /proc/$STREAM_PID/status) ${tracked:-0}"; sleep 5
  done ) >rss.log &
SAMPLER_PID=$!
START=$(date +%s)
rounds=() fail=0
while (( $(date +%s) - START + CHUNK <= DURATION )); do
  out=$(wrk -t2 -c"$CONNS" -d"${CHUNK}s" --timeout 5s -s recommend.lua "http://127.0.0.1:$PORT" | grep '^WRK')
  echo "t=$(( $(date +%s) - START ))s $out"
  rounds+=("$(( $(date +%s) - START )) $out")
done
applied=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1=="freshrec_events_applied_total" {print $2}')
kill $REPLAY_PID 2>/dev/null || true; wait $REPLAY_PID 2>/dev/null || true
kill $STREAM_PID; rc=0; wait $STREAM_PID || rc=$?
kill $SAMPLER_PID 2>/dev/null || true
verdict=0
python3 - "$WARMUP" "$rc" "${applied:-0}" "$DURATION" "${rounds[@]}" >verdict.txt <<'PY' || verdict=$?
import sys
warm, rc, applied, duration = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rounds = []
for r in sys.argv[5:]:
    t, rest = r.split(" ", 1)
    f = dict(kv.split("=") for kv in rest.split()[1:])
    rounds.append((int(t), {k: float(v) for k, v in f.items()}))
rss = [(int(a), int(b), float(c)) for a, b, c in (l.split() for l in open("rss.log") if len(l.split()) == 3)]
t0 = rss[0][0]
after = [kb for t, kb, _ in rss if t - t0 >= warm]
users = [u for t, _, u in rss if t - t0 >= warm]
# Users first seen after the warm-up legitimately add state (README: ~1.5 KB each at k=64,
# bounded by memory.max_users): RSS growth beyond 2 KB a newly tracked user is what counts.
new_users = users[-1] - users[0] if len(users) > 1 else 0.0
errors = sum(f["errors"] for _, f in rounds)
post = [f for t, f in rounds if t >= warm] or [f for _, f in rounds]
raw_growth = (after[-1] - after[0]) / after[0] * 100 if len(after) > 1 else 0.0
growth = (after[-1] - after[0] - 2.0 * new_users) / after[0] * 100 if len(after) > 1 else 0.0
p99s = [f["p99_ms"] for f in post]
drift = max(p99s) / p99s[0] if p99s and p99s[0] > 0 else 1.0
ok = errors == 0 and growth <= 15 and drift <= 3 and rc == 0
print(f"rounds {len(rounds)}, wrk errors {errors:.0f}, requests {sum(f['requests'] for _, f in rounds):.0f}, "
      f"p99 per round after warm-up {', '.join(f'{x:.1f}' for x in p99s)} ms, RSS {after[0]//1024 if after else 0} -> "
      f"{after[-1]//1024 if after else 0} MB ({raw_growth:+.1f}%; users tracked {users[0] if users else 0:.0f} -> "
      f"{users[-1] if users else 0:.0f}; growth beyond 2 KB per newly tracked user {growth:+.1f}%), "
      f"events applied {applied:.0f}, exit {rc}")
print(f"| soak: {duration} s HTTP ingest + wrk on /v1/recommend | 1 | wrk errors {errors:.0f}; RSS after warm-up "
      f"{raw_growth:+.1f}% with {new_users:.0f} more users tracked ({growth:+.1f}% beyond 2 KB each); p99 {min(p99s):.1f}-{max(p99s):.1f} ms per {len(post)} rounds; {applied:.0f} events applied; "
      f"SIGTERM exit {rc} |")
sys.exit(0 if ok else 1)
PY
head -n 1 verdict.txt
IFS='|' read -r _ fault tries outcome _ <<<"$(tail -n 1 verdict.txt)"
row "$(echo $fault)" "$(echo $tries)" "$(echo $outcome)$([[ $verdict -ne 0 ]] && echo ' — FAILED a bound')"
exit $verdict
