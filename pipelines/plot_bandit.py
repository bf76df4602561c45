#!/usr/bin/env python3
"""Plots of a bandit experiment (freshrec-experiment with a "simulation:" config).

usage: plot_bandit.py DIR   -- reads DIR/results.json, writes DIR/bandit_ctr.png and DIR/bandit_regret.png
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(out_dir):
    with open(os.path.join(out_dir, "results.json")) as f:
        results = json.load(f)
    variants = results["variants"]
    for key, name, ylabel in (("ctr_by_tenth", "bandit_ctr.png", "CTR in each tenth of the run"),
                              ("cumulative_regret_by_tenth", "bandit_regret.png", "cumulative regret (expected clicks lost)")):
        fig, ax = plt.subplots(figsize=(7, 4))
        for vname, v in variants.items():
            ys = v.get(key, [])
            ax.plot([0.1 * (i + 1) for i in range(len(ys))], ys, marker="o", label=vname)
        ax.set_xlabel("share of the requests served")
        ax.set_ylabel(ylabel)
        ax.set_title(results.get("experiment", "bandit"))
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, name), dpi=110)
        plt.close(fig)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
