"""Curves of a comparison (lfx.qd.comparison): mean over seeds of each metric against evaluations."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from lfx.experiment import read_rows

PLOTTED = ("coverage", "uniformity", "reward_areas", "best_reward")


def comparison_curves(path: str, comparison: Any, rows: list[dict[str, Any]]):
    """label -> list over seeds of (evaluations [T], {metric: [T]}) for every algorithm and setting."""
    out: dict[str, list[tuple[np.ndarray, dict[str, np.ndarray]]]] = {}
    multi = len(comparison.labels) > 1
    for name in comparison.config.algorithms:
        for h, label in enumerate(comparison.labels):
            key = f"{name} [{label}]" if multi else name
            metrics_file = os.path.join(path, name, "metrics.jsonl")
            if os.path.exists(metrics_file) and "history" not in next(
                    (r for r in rows if r["algorithm"] == name), {"history": 0}):
                recs = [r for r in read_rows(metrics_file) if r["setting"] == h]
                for s in sorted({r["seed"] for r in recs}):
                    rs = sorted((r for r in recs if r["seed"] == s), key=lambda r: r["step"])
                    out.setdefault(key, []).append((
                        np.array([r["qd/evaluations"] for r in rs], float),
                        {m: np.array([r[f"qd/{m}"] for r in rs], float) for m in PLOTTED}))
            for r in rows:
                if r["algorithm"] == name and r["setting"] == h and "history" in r:
                    hist = r["history"]
                    out.setdefault(key, []).append((
                        np.array([p["evaluations"] for p in hist], float),
                        {m: np.array([p[m] for p in hist], float) for m in PLOTTED}))
    return out


def plot_comparison(path: str, comparison: Any, rows: list[dict[str, Any]], out: str) -> str:
    """One panel per metric, one line per algorithm (mean over seeds, interpolated); writes `out`."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    curves = comparison_curves(path, comparison, rows)
    fig, axes = plt.subplots(1, len(PLOTTED), figsize=(4 * len(PLOTTED), 3.2))
    for label, runs in curves.items():
        grid = np.linspace(0, max(x.max() for x, _ in runs), 50)
        for ax, m in zip(axes, PLOTTED, strict=True):
            ax.plot(grid, np.mean([np.interp(grid, x, y[m]) for x, y in runs], 0), label=label)
            ax.set_title(f"{comparison.config.env}: {m}")
            ax.set_xlabel("evaluations")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
