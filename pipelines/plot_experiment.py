#!/usr/bin/env python3
"""Plots of a freshrec-experiment run: python3 pipelines/plot_experiment.py OUT_DIR

Reads OUT_DIR/results.json and writes
  metric_over_time.png  HR@K per time window of the replayed stream, one line per variant
  sweep_<name>.png      HR@K and NDCG@K against each swept value (mean ± std over seeds)
Needs matplotlib (Debian: python3-matplotlib); the runner calls this script when it is there.
"""
import datetime
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = argv[1]
    with open(os.path.join(out, "results.json")) as f:
        r = json.load(f)
    k = r.get("k", 10)
    hr = f"hr@{k}"
    ndcg = f"ndcg@{k}"

    fig, ax = plt.subplots(figsize=(9, 5))
    for name, v in sorted(r["variants"].items()):
        windows = [w for w in v["windows"] if w["scored"] > 0]
        if not windows:
            continue
        # Each window at its midpoint in event time.
        x = [datetime.datetime.utcfromtimestamp((w["start_time"] + w["end_time"]) / 2) for w in windows]
        y = [w[hr] for w in windows]
        style = "-" if v.get("scorer") == "engine" else "--"
        ax.plot(x, y, style, marker="o", markersize=3, label=f"{name} ({v[hr]:.3f})")
    ax.set_xlabel("stream event time (UTC, window midpoints)")
    ax.set_ylabel(f"HR@{k} per window")
    ax.set_title(f"{r.get('experiment', '')}: HR@{k} over the replayed stream")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "metric_over_time.png"), dpi=120)
    plt.close(fig)

    for name, s in r.get("sweeps", {}).items():
        pts = s["points"]
        xs = [p["value"] for p in pts]
        positive = all(x > 0 for x in xs)
        fig, ax = plt.subplots(figsize=(6, 4))
        for metric in (hr, ndcg):
            ys = [p[metric] for p in pts]
            es = [p.get(metric + "_std", 0.0) for p in pts]
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=metric)
        for base, style in (("frozen", ":"), ("popularity", "-.")):
            if base in r["variants"]:
                ax.axhline(r["variants"][base][hr], linestyle=style, color="grey", label=f"{base} {hr}")
        if positive and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
        elif not positive and len(xs) > 2 and max(xs) > 0 and sorted(x for x in xs if x > 0)[0] * 20 < max(xs):
            ax.set_xscale("symlog", linthresh=sorted(x for x in xs if x > 0)[0])
        ax.set_xlabel(f"{s['key']} ({s['variant']})")
        ax.set_ylabel("metric")
        ax.set_title(f"sweep {name}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"sweep_{name}.png"), dpi=120)
        plt.close(fig)
    print(f"[plots] wrote {out}/metric_over_time.png and {len(r.get('sweeps', {}))} sweep plot(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
