#!/usr/bin/env bash
# Hostile input at full size against the freshrec-stream binary (the unit-size versions
# are in tests/unit/hostile_input_test.cpp):
#  1. a mix: every kind of hostile line, R times each, interleaved with a generated log;
#     every line must be counted (events + dead letters + blank = lines), none crashes;
#  2. one line of --line-mb MiB (default 1024 = 1 GB) between valid events, with the
#     default max_line_bytes (1 MiB): dead-lettered, never buffered whole (peak RSS shown);
#  3. --users N distinct user ids (default 10,000,000) with stream.memory.max_users = 100000:
#     peak RSS and tracked users reported against the cap.
#   usage: tests/fault/hostile_inputs.sh [--repeat R (1000)] [--line-mb M (1024)] [--users N (10000000)] [--only mix|line|users]
source "$(dirname "$0")/lib.sh"
REPEAT=1000 LINE_MB=1024 USERS=10000000 ONLY=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --repeat) REPEAT=$2; shift 2 ;; --line-mb) LINE_MB=$2; shift 2 ;; --users) USERS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;; *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
make_shop 50000 5000 2000
fail=0
# timed <tag> stream …: runs under /usr/bin/time; peak_mb <tag>: its max RSS in MB.
# (Without GNU time — Debian package "time" — the RSS reads "?".)
timed() {
  local tag=$1 rc=0; shift
  [[ -x /usr/bin/time ]] && RUN_PREFIX=(/usr/bin/time -f '%M' -o "$WORK/rss-$tag")
  "$@" || rc=$?
  RUN_PREFIX=()
  return $rc
}
peak_mb() { [[ -s "$WORK/rss-$1" ]] && echo $(( $(tail -n 1 "$WORK/rss-$1") / 1024 )) || echo "?"; }

if [[ -z "$ONLY" || "$ONLY" == mix ]]; then
  python3 - "$WORK/events.ndjson" "$WORK/mix.ndjson" "$REPEAT" <<'PY'
import sys, random
src, dst, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
good = open(src, 'rb').read().splitlines()
ev = lambda u, i, t, ts, props=b'': b'{"user_id":' + u + b',"item_id":' + i + b',"event_type":"' + t + b'","timestamp":' + ts + (b',"properties":' + props if props else b'') + b'}'
kinds = {
  # rejected
  'deep_nesting':   lambda n: b'{"user_id":' + b'[' * 5000 + b']' * 5000 + b',"item_id":"i1","event_type":"view","timestamp":1700000000}',
  'deep_unknown':   lambda n: b'{"user_id":"u1","item_id":"i1","event_type":"view","timestamp":1700000000,"x":' + b'[' * 5000 + b']' * 5000 + b'}',
  'invalid_utf8':   lambda n: ev(b'"u\xff\xfe%d"' % n, b'"i1"', b'view', b'1700000000'),
  'nan_inf_price':  lambda n: ev(b'"u1"', b'"i1"', b'view', b'1700000000', [b'{"price":NaN}', b'{"price":1e999}', b'{"price":-Infinity}'][n % 3]),
  'nan_rating':     lambda n: ev(b'"u1"', b'"i1"', b'rating', b'1700000000', b'{"rating":1e400}'),
  'negative_price': lambda n: ev(b'"u1"', b'"i1"', b'view', b'1700000000', b'{"price":-3}'),
  'unknown_type':   lambda n: ev(b'"u1"', b'"i1"', b'teleport', b'1700000000'),
  'truncated':      lambda n: ev(b'"u1"', b'"i1"', b'view', b'1700000000')[: 10 + n % 50],
  'control_bytes':  lambda n: b'\x00\x01\x02\x1b[2J' * 4,
  # accepted (opaque ids, absurd but finite numbers, far timestamps, out of order)
  'path_ids':       lambda n: ev(b'"../../etc/passwd%d"' % (n % 7), b'"../models/LATEST"', b'click', b'1700000300'),
  'control_ids':    lambda n: ev(b'"\\u0000\\u001b[31m%d"' % (n % 7), b'"a/b\\\\c"', b'purchase', b'1700000300', b'{"price":1e300}'),
  'huge_rating':    lambda n: ev(b'"u%d"' % (n % 50), b'"i%d"' % (n % 50), b'rating', b'1700000300', b'{"rating":1e308}'),
  'far_future':     lambda n: ev(b'"u%d"' % (n % 50), b'"i1"', b'view', b'1e15'),
  'far_past':       lambda n: ev(b'"u%d"' % (n % 50), b'"i1"', b'view', b'-1e15'),
  'out_of_order':   lambda n: ev(b'"u%d"' % (n % 50), b'"i2"', b'click', b'%d' % (1700000000 - 86400 * (n % 400))),
}
lines = list(good)
rng = random.Random(7)
for name, make in kinds.items():
  for n in range(repeat):
    lines.insert(rng.randrange(len(lines) + 1), make(n))
open(dst, 'wb').write(b'\n'.join(lines) + b'\n')
print(len(kinds), 'kinds x', repeat, '+', len(good), 'generated events =', len(lines), 'lines')
PY
  rc=0; timed mix stream mix --set source.path="$WORK/mix.ndjson" --set source.max_line_bytes=1048576 || rc=$?
  read -r lines events dead blank nfs <<<"$(jstat "$WORK/s-mix.json" "d['counters']['lines'], d['events'], d['dead_letters'], d['counters']['blank_lines'], d['counters']['non_finite_skipped']" | tr -d '(),')"
  python3 - "$WORK/dl-mix.ndjson" <<'PY'
import json, sys, collections, re
c = collections.Counter(re.sub(r'[0-9"].*', '', json.loads(l)['reason'])[:60] for l in open(sys.argv[1], encoding='utf-8', errors='replace'))
for reason, n in c.most_common(): print('    dead letters: %6d  %s' % (n, reason))
PY
  echo "  mix: rc $rc, lines $lines = events $events + dead letters $dead + blank $blank; non_finite_skipped $nfs; peak RSS $(peak_mb mix) MB"
  if [[ $rc -eq 0 && $((events + dead + blank)) -eq $lines ]]; then
    row "hostile lines in a 50K-event log. Dead-lettered with a reason: nesting 5000 deep in a known field, invalid UTF-8, NaN/Inf/negative price, rating 1e400, unknown event type, truncated JSON, control bytes, timestamps +-1e15, rating 1e308. Accepted: nesting 5000 deep in an unknown key (skipped without recursion), ids with path separators / NUL / ESC, price 1e300, events out of order by up to 400 days" \
      "15 kinds x $REPEAT" "every line counted ($events events + $dead dead letters = $lines lines), non_finite_skipped $nfs; crashes 0"
  else
    row "hostile line mix" "15 x $REPEAT" "UNEXPECTED: rc $rc, $lines lines vs $events + $dead + $blank"; fail=1
  fi
fi

if [[ -z "$ONLY" || "$ONLY" == line ]]; then
  { head -n 1000 "$WORK/events.ndjson"
    printf '{"user_id":"u1","item_id":"'; head -c $((LINE_MB * 1048576)) /dev/zero | tr '\0' a; printf '","event_type":"view","timestamp":1700000000}\n'
    sed -n '1001,2000p' "$WORK/events.ndjson"; } >"$WORK/bigline.ndjson"
  t0=$(date +%s)
  rc=0; timed line stream line --set source.path="$WORK/bigline.ndjson" || rc=$?
  secs=$(( $(date +%s) - t0 ))
  read -r events over <<<"$(jstat "$WORK/s-line.json" "d['events'], d['counters']['oversized']" | tr -d '(),')"
  echo "  ${LINE_MB} MiB line: rc $rc, events $events, oversized $over, peak RSS $(peak_mb line) MB, ${secs}s"
  rm -f "$WORK/bigline.ndjson"
  if [[ $rc -eq 0 && $events -eq 2000 && $over -eq 1 ]]; then
    row "one ${LINE_MB} MiB line between 2000 valid events (max_line_bytes 1 MiB)" 1 \
      "dead-lettered as oversized, the 2000 events applied; peak RSS $(peak_mb line) MB; crashes 0"
  else
    row "one ${LINE_MB} MiB line" 1 "UNEXPECTED: rc $rc, events $events, oversized $over"; fail=1
  fi
fi

if [[ -z "$ONLY" || "$ONLY" == users ]]; then
  awk -v n="$USERS" 'BEGIN { for (k = 0; k < n; ++k) printf "{\"user_id\":\"visitor-%d\",\"item_id\":\"i%d\",\"event_type\":\"click\",\"timestamp\":%.2f}\n", k, k % 2000, 1700000000 + k * 0.01 }' >"$WORK/users.ndjson"
  t0=$(date +%s)
  rc=0; timed users stream users --set source.path="$WORK/users.ndjson" --set stream.memory.max_users=100000 \
    --set checkpoint.dir= || rc=$?  # no checkpoints: 100 of 100K tracked users each would dominate the run
  secs=$(( $(date +%s) - t0 ))
  read -r events evicted <<<"$(jstat "$WORK/s-users.json" "d['events'], d['counters']['evicted_users']" | tr -d '(),')"
  echo "  $USERS distinct users, max_users 100000: rc $rc, events $events, evicted $evicted, peak RSS $(peak_mb users) MB, ${secs}s"
  rm -f "$WORK/users.ndjson"
  # Bounded by the cap, not by the ids seen: 100K tracked users (~1.5 KB each) plus at most
  # 2 (max_users + holdout + cycle) + 1024 ids (id_compaction.cpp). Before the id table was
  # compacted, 10M ids held 1995 MB.
  peak=$(peak_mb users)
  if [[ $rc -eq 0 && $events -eq $USERS && ( "$peak" == "?" || $peak -lt 1000 ) ]]; then
    row "$USERS distinct user ids, memory.max_users 100000" 1 \
      "all applied, $evicted evictions (tracked users held at the cap); peak RSS $peak MB (limit checked: < 1000 MB); crashes 0"
  else
    row "$USERS distinct user ids" 1 "UNEXPECTED: rc $rc, events $events, peak RSS $peak MB"; fail=1
  fi
fi
exit $fail
