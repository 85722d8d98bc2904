"""Learning-curve plots: mean +- standard deviation over seeds."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_learning_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    path: str,
    *,
    xlabel: str = "environment steps",
    ylabel: str = "episodic return",
    title: str = "",
) -> str:
    """Plots one mean +- std band per label and writes a PNG.

    Args:
      curves: label -> (x [T], y [S, T]) with S seeds.
      path: output PNG path.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (x, y_raw) in curves.items():
        y = np.asarray(y_raw, dtype=np.float64).reshape(-1, np.shape(y_raw)[-1])
        mean, std = y.mean(0), y.std(0)
        ax.plot(x, mean, label=f"{label} (n={y.shape[0]})")
        ax.fill_between(x, mean - std, mean + std, alpha=0.25)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_frontier(
    points: dict[str, tuple[np.ndarray, np.ndarray]],
    path: str,
    *,
    xlabel: str = "KL(pi || pi_ref)",
    ylabel: str = "reward",
    title: str = "",
) -> str:
    """Scatters (x, y) points per label (e.g. one per seed and evaluation) and writes a PNG.

    The reward-KL frontier of the DPO paper's Fig. 2: x the sequence-level KL, y the mean reward.

    Args:
      points: label -> (x [n], y [n]).
      path: output PNG path.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (x, y) in points.items():
        ax.scatter(np.ravel(x), np.ravel(y), s=12, alpha=0.6, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
