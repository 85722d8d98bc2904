"""The host loop around a jitted recipe: chunks, progress bar, checkpoints, resume, NaN check.

A run of `total_updates` updates is executed as jitted chunks of `chunk_size` updates (one `lax.scan`
each). Between chunks the host updates the progress bar, writes metrics, checks them for non-finite
values and saves a checkpoint every `checkpoint_every` updates. Because the run's state (PRNG keys
included) is carried whole and every chunk is the same compiled scan body, a resumed run ends with
exactly the parameters of an uninterrupted one.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np
from tqdm.auto import tqdm

from lfx.utils.checkpoint import Checkpointer
from lfx.utils.metrics import MetricWriter, summarize


class NonFiniteMetricError(FloatingPointError):
    """A metric went NaN/inf; the run stopped and the last good checkpoint was kept."""


def _first_non_finite(metrics: dict[str, np.ndarray], offset: int) -> tuple[int, str] | None:
    for name, value in sorted(metrics.items()):
        bad = ~np.isfinite(np.asarray(value, dtype=np.float64))
        if bad.any():
            t = int(np.argwhere(bad.reshape(-1, bad.shape[-1]).any(0))[0, 0])
            return offset + t + 1, name
    return None


def run_chunked(
    init: Callable[[], Any],
    run: Callable[[Any, int], tuple[Any, dict[str, jax.Array]]],
    *,
    total_updates: int,
    chunk_size: int,
    batch_ndim: int = 0,
    checkpointer: Checkpointer | None = None,
    checkpoint_every: int = 0,
    writer: MetricWriter | None = None,
    nan_check: bool = False,
    progress: bool = True,
    progress_metric: str = "train/episode_return",
    steps_per_update: int = 1,
    stop_after: int | None = None,
) -> tuple[Any, dict[str, np.ndarray]]:
    """Runs `init()` then `run(state, n)` chunks until `total_updates` updates are done.

    Args:
      init: builds the (possibly vmapped) initial state.
      run: `run(state, n) -> (state, metrics)`, each metric [*batch, n]; jitted by the caller with
        `n` static.
      total_updates: updates in the whole run.
      chunk_size: updates per jitted call (the progress bar moves once per chunk).
      batch_ndim: number of leading vmapped axes of the metrics (seeds, hyperparameters).
      checkpointer: where to save/resume; resumes from its newest checkpoint if there is one.
      checkpoint_every: save every this many updates (rounded up to whole chunks); 0 = only at the
        end.
      writer: metric writer (JSONL/CSV); records carry `step` = update index, 1-based.
      nan_check: stop with `NonFiniteMetricError` naming the update and metric that went
        non-finite, before anything from that chunk is saved.
      progress: show a tqdm bar.
      steps_per_update: environment steps per update (for the `env_steps` column).
      stop_after: stop once this many updates are done (simulates a killed run in tests).

    Returns:
      (final state, metrics as NumPy arrays [*batch, updates done]).
    """
    if chunk_size <= 0 or total_updates <= 0:
        raise ValueError("chunk_size and total_updates must be positive.")
    state = init()
    done = 0
    history: dict[str, list[np.ndarray]] = {}
    if checkpointer is not None and checkpointer.latest_step() is not None:
        done = checkpointer.latest_step()
        metrics_shape = jax.eval_shape(lambda s: run(s, 1)[1], state)
        like_hist = {
            k: np.zeros(v.shape[:-1] + (done,), v.dtype) for k, v in metrics_shape.items()
        }
        restored = checkpointer.restore(done, {"state": state, "metrics": like_hist})
        state = restored["state"]
        history = {k: [np.asarray(v)] for k, v in restored["metrics"].items()}
        if writer is not None:
            writer.truncate(done)

    def concat() -> dict[str, np.ndarray]:
        return {k: np.concatenate(v, axis=-1) for k, v in history.items()}

    bar = tqdm(total=total_updates, initial=done, disable=not progress, unit="upd", leave=True)
    last_saved = done
    target = total_updates if stop_after is None else min(stop_after, total_updates)
    while done < target:
        n = min(chunk_size, target - done)
        state, metrics = run(state, n)
        metrics = {k: np.asarray(v) for k, v in jax.device_get(metrics).items()}
        if nan_check:
            bad = _first_non_finite(metrics, done)
            if bad is not None:
                bar.close()
                where = f"the last good checkpoint (update {last_saved})" if (
                    checkpointer is not None and last_saved > 0
                ) else "no checkpoint (none was saved yet)"
                raise NonFiniteMetricError(
                    f"Metric {bad[1]!r} became non-finite at update {bad[0]}; the run stopped and "
                    f"{where} was kept."
                )
        for k, v in metrics.items():
            history.setdefault(k, []).append(v)
        if writer is not None:
            records = summarize(metrics, batch_ndim)
            for i, r in enumerate(records):
                r["step"] = done + i + 1
                r["env_steps"] = (done + i + 1) * steps_per_update
            writer.write(records)
        done += n
        bar.update(n)
        if progress_metric in metrics:
            bar.set_postfix({progress_metric.split("/")[-1]: f"{np.mean(metrics[progress_metric][..., -1]):.2f}"})
        due = checkpoint_every > 0 and done - last_saved >= checkpoint_every
        if checkpointer is not None and (due or done == total_updates):
            checkpointer.save(done, {"state": state, "metrics": concat()})
            last_saved = done
    bar.close()
    return state, concat()
