"""Aggregate statistics over runs and tasks, with stratified-bootstrap confidence intervals.

Host-side NumPy for evaluation scripts (final scores, not inside `jit`), following rliable:
Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the Statistical Precipice",
arXiv:2108.13264.

Scores are `[num_runs, num_tasks]` (a 1-D `[num_runs]` array is one task), usually normalised so
that 0 is random and 1 is a reference. The statistics also accept leading batch axes
`[..., num_runs, num_tasks]`, which is how `bootstrap_ci` evaluates many resamples at once.

    results = aggregate({"PPO": ppo_scores, "LPO": lpo_scores})   # name -> {"iqm": (pt, lo, hi)}
    plot_aggregate(results, "aggregate.png")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

Interval = tuple[float, float, float]


def _as_matrix(scores) -> np.ndarray:
    """[runs] -> [runs, 1]; [..., runs, tasks] unchanged. Refuses empty input."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.ndim < 2 or scores.shape[-1] == 0 or scores.shape[-2] == 0:
        raise ValueError(
            f"scores must be [num_runs] or [num_runs, num_tasks] and non-empty, got {scores.shape}."
        )
    return scores


def iqm(scores) -> np.ndarray:
    """Interquartile mean over all runs and tasks: the 25% trimmed mean of the pooled scores.

    With the `n = num_runs * num_tasks` scores sorted, x_(0) <= ... <= x_(n-1), and `k = floor(n/4)`,

        IQM = 1 / (n - 2k) * sum_{i=k}^{n-k-1} x_(i),

    i.e. `scipy.stats.trim_mean(scores, 0.25, axis=None)`, rliable's `aggregate_iqm`. Tasks are
    pooled, not averaged per task first (Agarwal et al. 2021, arXiv:2108.13264, Sec. 4.2).

    Args:
      scores: [num_runs, num_tasks] (or [num_runs]; leading batch axes allowed).

    Returns:
      The IQM, shape [...] (a scalar for one score matrix).
    """
    scores = _as_matrix(scores)
    flat = np.sort(scores.reshape(*scores.shape[:-2], -1), axis=-1)
    n = flat.shape[-1]
    k = int(0.25 * n)  # scipy's rounding: the number cut from each end is floor(0.25 n)
    return flat[..., k : n - k].mean(-1)


def mean(scores) -> np.ndarray:
    """Mean over tasks of the per-task mean over runs: (1/M) sum_m (1/N) sum_n x_{n,m}.

    rliable's `aggregate_mean` (arXiv:2108.13264).

    Args:
      scores: [num_runs, num_tasks] (or [num_runs]; leading batch axes allowed).
    """
    return _as_matrix(scores).mean(-2).mean(-1)


def median(scores) -> np.ndarray:
    """Median over tasks of the per-task mean over runs: median_m (1/N) sum_n x_{n,m}.

    rliable's `aggregate_median` (arXiv:2108.13264). With one task it is that task's mean.

    Args:
      scores: [num_runs, num_tasks] (or [num_runs]; leading batch axes allowed).
    """
    return np.median(_as_matrix(scores).mean(-2), axis=-1)


def optimality_gap(scores, gamma: float = 1.0) -> np.ndarray:
    """How far below `gamma` the scores fall on average: gamma - (1/NM) sum_{n,m} min(x_{n,m}, gamma).

    Scores above `gamma` count as `gamma`, so surpassing the target earns nothing. rliable's
    `aggregate_optimality_gap` (arXiv:2108.13264, Sec. 4.2); lower is better.

    Args:
      scores: [num_runs, num_tasks] (or [num_runs]; leading batch axes allowed).
      gamma: the target score.
    """
    scores = _as_matrix(scores)
    return gamma - np.minimum(scores, gamma).mean((-2, -1))


# Name -> statistic. These accept leading batch axes, so `bootstrap_ci` evaluates them on a whole
# chunk of resamples in one call.
STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "iqm": iqm,
    "mean": mean,
    "median": median,
    "optimality_gap": optimality_gap,
}


def stratified_resample(scores, num_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap resamples that redraw runs with replacement separately within each task.

    Resample b is x*_{n,m} = x_{I_{b,n,m}, m} with I_{b,n,m} ~ Uniform{0..N-1} independent: every
    column keeps its own task (rliable's `StratifiedBootstrap` without task bootstrapping).

    Args:
      scores: [num_runs, num_tasks] (or [num_runs]).
      num_resamples: B.
      rng: a NumPy Generator.

    Returns:
      [B, num_runs, num_tasks].
    """
    scores = _as_matrix(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [num_runs, num_tasks], got {scores.shape}.")
    num_runs, num_tasks = scores.shape
    runs = rng.integers(0, num_runs, size=(num_resamples, num_runs, num_tasks))
    return scores[runs, np.arange(num_tasks)]


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _bootstrap(
    scores,
    statistics: Mapping[str, Callable],
    *,
    num_resamples: int,
    confidence: float,
    seed: int | np.random.Generator,
    batched: Mapping[str, bool],
) -> dict[str, tuple]:
    """Point estimates and percentile intervals of several statistics on the same resamples."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}.")
    if num_resamples < 1:
        raise ValueError(f"num_resamples must be positive, got {num_resamples}.")
    scores = _as_matrix(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [num_runs, num_tasks], got {scores.shape}.")
    rng = _rng(seed)
    chunk = max(1, (1 << 20) // scores.size)  # bounds the resample buffer to ~8 MB
    values: dict[str, list] = {name: [] for name in statistics}
    for start in range(0, num_resamples, chunk):
        resamples = stratified_resample(scores, min(chunk, num_resamples - start), rng)
        for name, statistic in statistics.items():
            if batched[name]:
                values[name].append(np.asarray(statistic(resamples)))
            else:
                values[name].append(np.stack([np.asarray(statistic(r)) for r in resamples]))
    alpha = (1.0 - confidence) / 2.0
    out = {}
    for name, statistic in statistics.items():
        point = np.asarray(statistic(scores))
        low, high = np.percentile(np.concatenate(values[name]), [100 * alpha, 100 * (1 - alpha)], 0)
        out[name] = tuple(float(v) if v.ndim == 0 else v for v in (point, low, high))
    return out


def bootstrap_ci(
    scores,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    num_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
    batched: bool | None = None,
) -> tuple:
    """A statistic and its stratified-bootstrap percentile confidence interval.

    Draws B resamples with `stratified_resample` (runs redrawn within each task, tasks kept) and
    returns the empirical alpha/2 and 1 - alpha/2 quantiles (linear interpolation, as
    `np.percentile`) of the statistic over them, alpha = 1 - confidence: rliable's
    `get_interval_estimates(..., method="percentile")`, arXiv:2108.13264 Sec. 4.1.

    Args:
      scores: [num_runs, num_tasks] (or [num_runs], one task).
      statistic: [num_runs, num_tasks] -> scalar (or array), e.g. `iqm`.
      num_resamples: B (rliable's own default is 50000; 2000 is enough for plots).
      confidence: coverage of the interval.
      seed: an int or a `np.random.Generator`.
      batched: whether `statistic` accepts [B, num_runs, num_tasks] and returns [B, ...]. Default:
        True for this module's `STATISTICS`, else False (one call per resample).

    Returns:
      (point, low, high): floats for a scalar statistic; `point` is the statistic of `scores`.
    """
    if batched is None:
        batched = any(statistic is s for s in STATISTICS.values())
    return _bootstrap(
        scores,
        {"s": statistic},
        num_resamples=num_resamples,
        confidence=confidence,
        seed=seed,
        batched={"s": batched},
    )["s"]


def aggregate(
    scores_by_name: Mapping[str, np.ndarray],
    *,
    metrics: Sequence[str] = ("iqm", "mean", "median"),
    num_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, Interval]]:
    """Point estimates and stratified-bootstrap intervals of several metrics for several methods.

    Every method is resampled from a fresh `np.random.default_rng(seed)`, so its numbers do not
    depend on which other methods are in the dict; its metrics share the same resamples.

    Args:
      scores_by_name: method name -> scores [num_runs, num_tasks] or [num_runs].
      metrics: names from `STATISTICS`.
      num_resamples, confidence, seed: as in `bootstrap_ci`.

    Returns:
      name -> metric -> (point, low, high).
    """
    unknown = [m for m in metrics if m not in STATISTICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}; use names from {sorted(STATISTICS)}.")
    chosen = {m: STATISTICS[m] for m in metrics}
    return {
        name: _bootstrap(
            scores,
            chosen,
            num_resamples=num_resamples,
            confidence=confidence,
            seed=seed,
            batched={m: True for m in chosen},
        )
        for name, scores in scores_by_name.items()
    }


_LABELS = {"iqm": "IQM", "mean": "Mean", "median": "Median", "optimality_gap": "Optimality gap"}


def plot_aggregate(
    results: Mapping[str, Mapping[str, Interval]],
    path: str,
    *,
    metrics: Sequence[str] | None = None,
    xlabel: str = "normalized score",
    title: str = "",
) -> str:
    """Horizontal interval plot (rliable's `plot_interval_estimates`): one panel per metric.

    Each method is a row: a bar from `low` to `high` with a tick at the point estimate.

    Args:
      results: the output of `aggregate`, name -> metric -> (point, low, high).
      path: output image path.
      metrics: panels, in order (default: the metrics of the first method).

    Returns:
      `path`.
    """
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    names = list(results)
    if not names:
        raise ValueError("results is empty.")
    metrics = list(metrics or results[names[0]])
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    fig = Figure(figsize=(3.4 * len(metrics), 0.45 * len(names) + 1.2))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for row, name in enumerate(names):
            point, low, high = results[name][metric]
            color = colors[row % len(colors)]
            ax.barh(row, high - low, left=low, height=0.6, color=color, alpha=0.75)
            ax.vlines(point, row - 0.3, row + 0.3, color="k", linewidth=1.5)
        ax.set_yticks(range(len(names)), names if ax is axes[0][0] else [""] * len(names))
        ax.set_title(_LABELS.get(metric, metric))
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
        ax.invert_yaxis()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
