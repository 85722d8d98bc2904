"""The reward-KL frontier of several `lfx.pref` runs on one plot, and their final points as a table.

    python experiments/pref_report.py runs/pref/dpo_beta_sweep runs/pref/rloo_kl_sweep \\
        --out=runs/pref/frontier.png
    python experiments/pref_report.py runs/pref/fdpo_* --x=eval/reward --y=eval/entropy \\
        --out=runs/pref/fdpo_diversity.png                    # f-DPO's alignment-diversity trade
    python experiments/pref_report.py runs/rlhf/grpo_arithmetic --out=runs/rlhf/grpo.png \
        --curves=eval/reward,eval/greedy_reward,eval/pass@n       # every evaluation's numbers

For every run folder (experiments/pref.py or rlhf.py) and every setting: each evaluation's
(x, y) of each seed is a point on the plot (default (KL, reward): the DPO paper's Fig. 2 axes);
the table lists the final evaluation's mean +- std over seeds of reward, KL, win rate and entropy.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from lfx.experiment.metrics import read_rows
from lfx.utils.plotting import plot_frontier


def points(folder: str, x: str = "eval/kl", y: str = "eval/reward"
           ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """label -> (x [n], y [n]) at every evaluation of every seed of each setting."""
    with open(os.path.join(folder, "summary.json")) as f:
        summary = json.load(f)
    method = summary.get("method", "pref")
    method = summary.get("loss_type") if method == "pref" else method
    with open(os.path.join(folder, "run.json")) as f:  # the run's settings (Workdir's record)
        fdiv = json.load(f).get("pref", {}).get("f_divergence", "reverse_kl")
    method = method if fdiv == "reverse_kl" else f"{method} {fdiv}"
    labels = [r["label"] for r in summary["runs"]]
    out: dict[str, tuple[list, list]] = {}
    for row in read_rows(os.path.join(folder, "metrics.jsonl")):
        if row.get("eval/fresh", 0) > 0:
            name = f"{method} {labels[row['setting']]}".replace(" default", "")
            xs, ys = out.setdefault(name, ([], []))
            xs.append(row[x])
            ys.append(row[y])
    return {k: (np.array(a), np.array(b)) for k, (a, b) in out.items()}


def table(folders: list[str]) -> str:
    lines = ["| run | setting | reward | KL | win rate | entropy |", "| --- | --- | --- | --- | --- | --- |"]
    for folder in folders:
        with open(os.path.join(folder, "summary.json")) as f:
            summary = json.load(f)
        for r in summary["runs"]:
            cells = [f"{r[f'final_{k}_mean']:.3f} ± {r[f'final_{k}_std']:.3f}"
                     if f"final_{k}_mean" in r else "–"  # runs from before the metric existed
                     for k in ("reward", "kl", "win_rate", "entropy")]
            lines.append(f"| {os.path.basename(folder)} | {r['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curves(folders: list[str], metrics: list[str]) -> str:
    """Mean +- std over seeds of `metrics` at every evaluation of every run and setting."""
    head = "| run | setting | update | " + " | ".join(metrics) + " |"
    lines = [head, "|" + " --- |" * (3 + len(metrics))]
    for folder in folders:
        with open(os.path.join(folder, "summary.json")) as f:
            labels = [r["label"] for r in json.load(f)["runs"]]
        rows = [r for r in read_rows(os.path.join(folder, "metrics.jsonl"))
                if r.get("eval/fresh", 0) > 0]
        for h, label in enumerate(labels):
            for step in sorted({r["step"] for r in rows if r["setting"] == h}):
                at = [r for r in rows if r["setting"] == h and r["step"] == step]
                cells = [f"{np.mean([r[m] for r in at]):.3f} ± {np.std([r[m] for r in at]):.3f}"
                         if m in at[0] else "–" for m in metrics]
                lines.append(f"| {os.path.basename(folder)} | {label} | {step} | "
                             + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--out", default="frontier.png")
    parser.add_argument("--x", default="eval/kl")
    parser.add_argument("--y", default="eval/reward")
    parser.add_argument("--curves", default="", help="Comma-separated metrics to list at every "
                        "evaluation (e.g. eval/reward,eval/kl,eval/pass@n).")
    args = parser.parse_args()
    merged = {}
    for folder in args.folders:
        merged.update(points(folder, args.x, args.y))
    plot_frontier(merged, args.out, xlabel=args.x, ylabel=args.y,
                  title=f"{args.y} vs {args.x} at every evaluation")
    print(table(args.folders))
    if args.curves:
        print(curves(args.folders, args.curves.split(",")))
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
