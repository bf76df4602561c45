#!/usr/bin/env bash
# Corrupt snapshots and checkpoints, against the real binaries:
#  1. every file of a snapshot, truncated and with one flipped byte: freshrec-stream
#     started on nothing but that snapshot exits 4 naming the file and the mismatch;
#  2. a corrupt snapshot published under a running updater (follow source, hot-swap
#     watcher): refused with the file named, the updater keeps its baseline and goes
#     on ingesting; a good one published after it is swapped in;
#  3. the newest checkpoint truncated, byte-flipped in its payload or its header, and
#     all of them corrupt: refused with the file and the mismatch named, the previous
#     one (or a replay from the start) is used, and the final state_digest equals an
#     uninterrupted run's.
#   usage: tests/fault/corrupt_artifacts.sh [--events N] (default 20000)
source "$(dirname "$0")/lib.sh"
EVENTS=20000
[[ "${1:-}" == "--events" ]] && EVENTS=$2
make_shop "$EVENTS" 2000 800
V=$(cat "$WORK/models/LATEST")
fail=0
flip() {  # flip <file> <offset>: xor one byte with 0x01
  python3 - "$1" "$2" <<'PY'
import sys
p, at = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read()); at = min(at, len(b) - 1); b[at] ^= 0x01
open(p, 'wb').write(bytes(b))
PY
}
truncate_half() { local n; n=$(stat -c %s "$1"); truncate -s $((n / 2)) "$1"; }

# --- 1. a process started on nothing but a corrupt snapshot
cases=0 refused=0
for f in manifest.json user_factors.npy item_factors.npy user_bias.npy item_bias.npy user_ids.txt item_ids.txt; do
  for how in flip truncate; do
    rm -rf "$WORK/m1" && mkdir -p "$WORK/m1" && cp -r "$WORK/models/$V" "$WORK/m1/" && cp "$WORK/models/LATEST" "$WORK/m1/"
    target="$WORK/m1/$V/$f"
    if [[ $how == flip ]]; then flip "$target" $(( $(stat -c %s "$target") * 2 / 3 )); else truncate_half "$target"; fi
    rc=0; stream c1 --set model.dir="$WORK/m1" || rc=$?
    cases=$((cases + 1))
    err=$(cat "$WORK/err-c1.txt")
    # Data files are trusted through the manifest's size and sha256: the message says which
    # failed. A flipped manifest byte may land in a key or the JSON syntax instead of a
    # value, so there any integrity error naming the manifest counts.
    if [[ $rc -eq 4 && "$err" == *"$f"* && ( $f == manifest.json || "$err" == *mismatch* || "$err" == *truncated* ) ]]; then
      refused=$((refused + 1))
    else
      echo "snapshot $f ($how): rc $rc, stderr: $err"; fail=1
    fi
  done
  echo "  $f: $(head -c 300 "$WORK/err-c1.txt")"
done
row "snapshot file truncated or one byte flipped (each of its 7 files), updater started on it alone" "$cases" \
  "$refused refused: exit 4 with the file and the mismatch named; crashes 0"

# --- 2. a corrupt snapshot published under a running updater
head -n $((EVENTS / 2)) "$WORK/events.ndjson" >"$WORK/live.ndjson"
"$BIN/freshrec-stream" --config "$STREAM_CONFIG" --quiet --set model.dir="$WORK/models" --set model.poll_ms=100 \
  --set source.type=follow --set source.path="$WORK/live.ndjson" --set source.poll_ms=20 \
  --set dead_letter.path="$WORK/dl-live.ndjson" --stats-out "$WORK/s-live.json" >/dev/null 2>"$WORK/err-live.txt" &
pid=$!
BG_PIDS+=("$pid")
sleep 1
cp -r "$WORK/models/$V" "$WORK/models/bad1" && flip "$WORK/models/bad1/item_factors.npy" 200
echo bad1 >"$WORK/models/LATEST.tmp" && mv "$WORK/models/LATEST.tmp" "$WORK/models/LATEST"
sleep 1
sed -n "$((EVENTS / 2 + 1)),$((EVENTS * 3 / 4))p" "$WORK/events.ndjson" >>"$WORK/live.ndjson"
sleep 1
cp -r "$WORK/models/$V" "$WORK/models/good2"
echo good2 >"$WORK/models/LATEST.tmp" && mv "$WORK/models/LATEST.tmp" "$WORK/models/LATEST"
sleep 1
tail -n +$((EVENTS * 3 / 4 + 1)) "$WORK/events.ndjson" >>"$WORK/live.ndjson"
sleep 2
kill -TERM "$pid"; rc=0; wait "$pid" || rc=$?
got=$(jstat "$WORK/s-live.json" "d['events'], d['counters']['swaps'], d['counters']['swaps_refused'], d['baseline_version']")
echo "live updater: rc $rc; events, swaps, refused, baseline = $got"
grep -h "bad1" "$WORK/err-live.txt" | head -n 2 | cut -c1-300
read -r ev sw sr bv <<<"$(echo "$got" | tr -d '(),')"
if [[ $rc -eq 0 && $ev -eq $EVENTS && $sw -ge 1 && $sr -ge 1 && "$bv" == *good2* ]] && grep -q "bad1.*mismatch" "$WORK/err-live.txt"; then
  row "corrupt snapshot published under a running updater, then a good one" 1 \
    "corrupt one refused (file + sha256 mismatch logged, counted in swaps_refused), old baseline kept, events lost 0; good one swapped in"
else
  row "corrupt snapshot published under a running updater" 1 "UNEXPECTED: rc $rc, $got"; fail=1
fi
echo "$V" >"$WORK/models/LATEST.tmp" && mv "$WORK/models/LATEST.tmp" "$WORK/models/LATEST"

# --- 3. corrupt checkpoints
CK=(--set checkpoint.every_events=$((EVENTS / 8)) --set checkpoint.every_seconds=0 --set checkpoint.keep=2)
stream clean "${CK[@]}"
want=$(jstat "$WORK/s-clean.json" "d['state_digest'], d['events']")
ck_cases=0 ck_ok=0
for how in payload-flip header-flip truncate all; do
  rm -rf "$WORK/ck-c3" "$WORK/dl-c3.ndjson"
  stream c3 "${CK[@]}" --stop-after-events $((EVENTS / 2 + 17))
  newest=$(ls "$WORK/ck-c3"/checkpoint-*.ckpt | sort | tail -n 1)
  case $how in
    payload-flip) flip "$newest" $(( $(stat -c %s "$newest") - 100 )) ;;
    # a digit of created_at: still valid JSON, so the header checksum is what catches it
    header-flip) flip "$newest" $(( $(head -n 2 "$newest" | grep -bo '"created_at":"' | head -n 1 | cut -d: -f1) + 16 )) ;;
    truncate) truncate_half "$newest" ;;
    all) for c in "$WORK/ck-c3"/checkpoint-*.ckpt; do flip "$c" $(( $(stat -c %s "$c") - 100 )); done ;;
  esac
  rc=0; stream c3 "${CK[@]}" || rc=$?
  got=$(jstat "$WORK/s-c3.json" "d['state_digest'], d['events']")
  ck_cases=$((ck_cases + 1))
  named=$(grep -c "$(basename "$newest")" "$WORK/err-c3.txt" || true)
  echo "  checkpoint $how: rc $rc, $(grep -m1 refusing "$WORK/err-c3.txt" | cut -c1-260)"
  if [[ $rc -eq 0 && "$got" == "$want" && $named -ge 1 ]] && grep -q "mismatch\|truncated" "$WORK/err-c3.txt"; then
    ck_ok=$((ck_ok + 1))
  else
    echo "checkpoint $how: rc $rc got $got want $want"; cat "$WORK/err-c3.txt"; fail=1
  fi
done
row "newest checkpoint truncated / payload byte flipped / header byte flipped / all checkpoints corrupt" "$ck_cases" \
  "$ck_ok refused with the file and the mismatch named, fell back (previous checkpoint or replay from the start); final state_digest identical; events lost 0"
exit $fail
