#!/usr/bin/env bash
# Times the whole nightly job end to end (generate/parse → build → train → evaluate →
# snapshot) on a generated ML-20M-sized log: ~140K users, 27K items, 20M events, k=64.
# Usage: tests/bench/nightly_e2e.sh [build-dir] [events] [extra --set ...]
# Prints the per-stage timing table from the metrics JSON.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
EVENTS=${2:-20000000}
shift $(( $# > 2 ? 2 : $# ))
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$BUILD/pipelines/freshrec-train" --config configs/nightly.yaml \
  --set data.generator.events="$EVENTS" --set data.generator.users=140000 --set data.generator.items=27000 \
  --set data.generator.categories=60 --set train.factors=64 --set train.iterations=15 \
  --set eval.refit_on_full_log=false --set output.dir="$OUT/models" --set output.warm_start= \
  "$@" --metrics-out "$OUT/m.json"
python3 - "$OUT/m.json" <<'PY'
import json, sys, statistics
m = json.load(open(sys.argv[1]))
t = m["timing"]
its = [i["seconds"] for i in t.get("iterations", [])]
print(f"events {m['data']['events']:,}  users {m['data']['users']:,}  items {m['data']['items']:,}")
for k in ("load_s", "split_s", "build_s", "train_s", "eval_s", "snapshot_s", "total_s"):
    if k in t: print(f"{k:>12} {t[k]:8.2f}")
if its: print(f"{'iter median':>12} {statistics.median(its):8.3f}  ({len(its)} iterations)")
print("ndcg@10", round(m["metrics"]["ndcg@10"], 4), "popularity", round(m["baseline"]["ndcg@10"], 4))
PY
