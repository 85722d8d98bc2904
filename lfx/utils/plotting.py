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
