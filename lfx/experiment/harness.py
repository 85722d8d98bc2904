"""The one host harness for every long run: chunks, progress, checkpoints, exact resume, NaN stop.

Two shapes of run, one set of guarantees (see `lfx.experiment.workdir` for the folder's rules):

* **A recipe run** (`run_chunked`): `init()` then `run(state, n)` chunks, each one jitted
  `lax.scan` of `n` updates, until `total_updates`. Between chunks the host moves the progress
  bar, writes one metric row per batch index and update (`lfx.experiment.metrics`), stops on a
  non-finite metric (naming the update, metric and batch index; the last checkpoint is kept) and
  saves a checkpoint every `checkpoint_every` updates and at the end. The state, PRNG keys
  included, is carried whole and every chunk runs the same compiled body, so a killed run resumed
  from its checkpoint ends with exactly the result of an uninterrupted one.
* **A run of independent cells** (`CellLog`): an evaluation grid (objectives x lifetimes, strategies
  x problems x seeds). Each finished cell appends one row to `results.jsonl`; a resumed run skips
  the cells already there and computes only the rest.

`recipe_functions` builds `init`/`run` for any family's recipe (`make_train(config) -> Recipe` with
`init(key, hparams, *args)`, `run(state, hparams, *args, num_updates=n)`), vmapped over hyperparameter
settings x seeds: one jitted call trains the whole grid.

Several processes (multi-host, `LFX_DISTRIBUTED=1`): every process runs the same `run_chunked`. The
metrics of each chunk are gathered whole on every process (`parallel.allgather`), so NaN checks,
`on_chunk` and `should_stop` (process 0's answer) decide alike; only the primary process's
`Workdir` / `MetricWriter` write, and checkpoints hold the whole state (`lfx.experiment.checkpoint`),
restored on every process and placed on devices again with `place`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from tqdm.auto import tqdm

from lfx import parallel
from lfx.experiment.checkpoint import Checkpoints
from lfx.experiment.config import ConfigError
from lfx.experiment.metrics import MetricWriter
from lfx.experiment.workdir import Workdir


class NonFiniteMetricError(FloatingPointError):
    """A metric went NaN/inf; the run stopped and the last good checkpoint was kept."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Settings of the harness around a recipe (never change results, only how a run is carried).

    seed: the PRNG seed of run 0; seeds are `jax.random.split(key(seed), num_seeds)`.
    num_seeds: runs per hyperparameter setting, vmapped.
    chunk_size: updates per jitted call (progress and checkpoint granularity).
    checkpoint_every: save every this many updates (rounded up to whole chunks); 0 = at the end only.
    keep_checkpoints: how many of the newest checkpoints are kept.
    """

    seed: int = 0
    num_seeds: int = 8
    chunk_size: int = 10
    checkpoint_every: int = 50
    keep_checkpoints: int = 2

    def validate(self) -> None:
        for name in ("num_seeds", "chunk_size", "keep_checkpoints"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"config.{name} must be positive, got {getattr(self, name)}.")
        if self.checkpoint_every < 0:
            raise ConfigError(
                f"config.checkpoint_every must be >= 0 (0: only at the end), got "
                f"{self.checkpoint_every}."
            )


def check_finite_hparams(hparams: Any, what: str = "hparams") -> None:
    """Refuses NaN / inf in a (batch of) hyperparameters before anything compiles."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(hparams)[0]:
        x = np.asarray(leaf)
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            name = jax.tree_util.keystr(path).lstrip(".")
            raise ConfigError(f"config.{what}.{name} must be finite, got {x.tolist()}.")


def _first_non_finite(metrics: dict[str, np.ndarray], offset: int, batch_names: tuple[str, ...]):
    for name, value in sorted(metrics.items()):
        x = np.asarray(value, dtype=np.float64)
        bad = ~np.isfinite(x)
        if bad.any():
            idx = np.argwhere(bad)
            first = idx[np.argmin(idx[:, len(batch_names)])]  # the earliest update
            t = int(first[len(batch_names)])
            where = ", ".join(f"{n} {int(i)}" for n, i in zip(batch_names, first))
            return offset + t + 1, name, where
    return None


def run_chunked(
    init: Callable[[], Any],
    run: Callable[[Any, int], tuple[Any, dict[str, jax.Array]]],
    *,
    total_updates: int,
    chunk_size: int,
    workdir: Workdir | None = None,
    checkpoint_every: int = 0,
    keep_checkpoints: int = 2,
    writer: MetricWriter | None = None,
    nan_check: bool = True,
    progress: bool = True,
    progress_metric: str = "train/episode_return",
    on_chunk: Callable[[dict[str, np.ndarray], int], None] | None = None,
    stop_after: int | None = None,
    should_stop: Callable[[int], bool] | None = None,
    place: Callable[[Any], Any] | None = None,
) -> tuple[Any, dict[str, np.ndarray]]:
    """Runs `init()` then `run(state, n)` chunks until `total_updates` updates are done.

    Args:
      init: builds the (possibly vmapped) initial state. On resume it is only traced
        (`jax.eval_shape`) to check the checkpoint against, never run.
      run: `run(state, n) -> (state, metrics)`, each metric `[*batch, n]`; jitted by the caller
        with `n` static.
      total_updates: updates in the whole run.
      chunk_size: updates per call.
      workdir: an opened `Workdir` (checkpoints go to its `checkpoints/`); None: no checkpoints.
        When it was opened with `resume=True` the newest usable checkpoint is restored.
      checkpoint_every: save every this many updates (rounded up to whole chunks); 0 = at the end.
      keep_checkpoints: newest checkpoints kept.
      writer: metric rows, `writer.batch_names` naming the leading axes of the metrics.
      nan_check: stop with `NonFiniteMetricError` at the first non-finite metric, before anything
        of that chunk is written.
      progress: show a tqdm bar; `progress_metric`'s mean over the batch is its postfix.
      on_chunk: `f(metrics, updates_done)` after each chunk (e.g. a warning on a huge KL).
      stop_after: stop once this many updates are done (a killed run, in tests).
      should_stop: `f(updates_done) -> bool` after each chunk; True saves a checkpoint (when a
        workdir is given) and stops cleanly, e.g. at a wall-time budget; `--resume` continues.
        Of several processes, process 0's answer counts.
      place: `f(state) -> state` applied to a restored state (host arrays), e.g. the `shard` given
        to `recipe_functions`, so a resumed run sits on the devices like a fresh one; needed when
        the state is split over several processes.

    Returns:
      (final state, metrics as NumPy arrays `[*batch, updates done]`).
    """
    if chunk_size <= 0 or total_updates <= 0:
        raise ConfigError(
            f"chunk_size ({chunk_size}) and the number of updates ({total_updates}) must be positive."
        )
    if checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every must be >= 0, got {checkpoint_every}.")
    batch_names = writer.batch_names if writer is not None else ()
    ckpts = Checkpoints(workdir.checkpoint_dir, keep_checkpoints) if workdir is not None else None
    done, history, state = 0, {}, None
    if workdir is not None and workdir.resuming:
        restored = ckpts.restore_latest(jax.eval_shape(init))
        if restored is not None:
            done, state, hist = restored
            if place is not None:
                state = place(state)
            history = {k: [v] for k, v in hist.items()}
            if writer is not None:
                writer.rewrite(hist)
            print(f"Resumed from update {done} of {total_updates} ({workdir.path}).", flush=True)
    if state is None:
        state = init()
        if writer is not None:
            writer.rewrite({})

    def concat() -> dict[str, np.ndarray]:
        return {k: np.concatenate(v, axis=-1) for k, v in history.items()}

    multi = jax.process_count() > 1
    bar = tqdm(total=total_updates, initial=done, disable=not progress or jax.process_index() > 0,
               unit="upd", leave=True)
    last_saved = done
    target = total_updates if stop_after is None else min(stop_after, total_updates)
    try:
        while done < target:
            n = min(chunk_size, target - done)
            state, metrics = run(state, n)
            metrics = parallel.allgather(metrics) if multi else jax.device_get(metrics)
            metrics = {k: np.asarray(v) for k, v in metrics.items()}
            if nan_check:
                bad = _first_non_finite(metrics, done, batch_names)
                if bad is not None:
                    kept = (f"the checkpoint at update {last_saved}" if ckpts is not None
                            and last_saved > 0 else "no checkpoint (none was saved yet)")
                    where = f" ({bad[2]})" if bad[2] else ""
                    raise NonFiniteMetricError(
                        f"Metric {bad[1]!r} became non-finite at update {bad[0]}{where}; the run "
                        f"stopped and {kept} was kept. Lower the learning rate or check the inputs."
                    )
            for k, v in metrics.items():
                history.setdefault(k, []).append(v)
            if writer is not None:
                writer.write(metrics, done)
            done += n
            bar.update(n)
            if progress_metric in metrics:
                value = float(np.mean(metrics[progress_metric][..., -1]))
                bar.set_postfix({progress_metric.rsplit("/", maxsplit=1)[-1]: f"{value:.2f}"})
            if on_chunk is not None:
                on_chunk(metrics, done)
            due = checkpoint_every > 0 and done - last_saved >= checkpoint_every
            stop = should_stop is not None and done < target and should_stop(done)
            if multi and should_stop is not None:  # one decision for all (collective)
                stop = bool(multihost_utils.broadcast_one_to_all(np.asarray(stop)))
            if ckpts is not None and (due or done == total_updates or stop) and last_saved != done:
                ckpts.save(done, state, concat())
                last_saved = done
            if stop:
                break
    finally:
        bar.close()
    return state, concat()


def recipe_functions(recipe: Any, keys: jax.Array, hparams: Any, *args: Any,
                     shard: Callable[[Any], Any] | None = None):
    """`(init, run)` for `run_chunked`, vmapped over settings `[H]` (hparams) x seeds `[S]` (keys).

    Args:
      recipe: a family's recipe (`init(key, hparams, *args)`, `run(state, hparams, *args,
        num_updates=n)`).
      keys: `[S]` typed keys, one per seed.
      hparams: the family's HParams with a leading settings axis `[H]` on every leaf.
      *args: passed unbatched to `init`/`run` (e.g. a learned objective's parameters).
      shard: optional `f(state) -> state` placing the initial state on devices.

    Returns:
      `init() -> state [H, S, ...]` and `run(state, n) -> (state, metrics [H, S, n])`, both jitted.
    """
    none = (None,) * len(args)

    def init_one(hp, k, *a):
        return recipe.init(k, hp, *a)

    # `args` are jit ARGUMENTS, not constants folded into the program: a data set or a model's
    # parameters would otherwise be constant-folded by XLA (slow compiles, huge programs).
    init_all = jax.jit(jax.vmap(jax.vmap(init_one, in_axes=(None, 0, *none)),
                                in_axes=(0, None, *none)))

    @functools.partial(jax.jit, static_argnums=1)
    def run_all(state, n, hp, *a):
        chunk = functools.partial(recipe.run, num_updates=n)
        over_seeds = jax.vmap(chunk, in_axes=(0, None, *none))
        return jax.vmap(over_seeds, in_axes=(0, 0, *none))(state, hp, *a)

    def run(state, n):
        return run_all(state, n, hparams, *args)

    def init():
        state = init_all(hparams, keys, *args)
        return shard(state) if shard is not None else state

    return init, run


def stack_hparams(settings: list[Any]) -> Any:
    """A list of HParams -> one HParams whose leaves have a leading settings axis `[H]`."""
    return jax.tree.map(lambda *xs: np.asarray(xs, np.float32), *settings)


class CellLog:
    """`results.jsonl` of a run of independent cells; a resumed run skips the recorded ones.

    Open the workdir with `has_checkpoints=CellLog.has_cells` so the cells count as the run's
    checkpoints (resumable with --resume, never overwritten without it).
    """

    FILE = "results.jsonl"

    def __init__(self, workdir: Workdir):
        self.path = workdir.file(self.FILE)
        self._rows: dict[str, dict[str, Any]] = {}
        if workdir.resuming and os.path.exists(self.path):
            bad = 0
            with open(self.path) as f:
                lines = f.readlines()
            for line in lines:
                try:
                    r = json.loads(line)
                    self._rows[r["cell"]] = r
                except (json.JSONDecodeError, KeyError, TypeError):
                    bad += 1
            if bad:
                print(f"warning: {self.path}: dropped {bad} unreadable line(s); those cells run "
                      f"again.", flush=True)
            self._rewrite()
        elif os.path.exists(self.path):
            os.remove(self.path)

    @staticmethod
    def has_cells(path: str) -> bool:
        p = os.path.join(path, CellLog.FILE)
        return os.path.exists(p) and os.path.getsize(p) > 0

    def _rewrite(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in self._rows.values())
        os.replace(tmp, self.path)

    def get(self, cell: str) -> dict[str, Any] | None:
        return self._rows.get(cell)

    def record(self, cell: str, row: dict[str, Any]) -> dict[str, Any]:
        """Appends one finished cell (flushed to disk at once) and returns the stored row."""
        row = {"cell": cell, **json.loads(json.dumps(row, default=_to_json))}
        self._rows[cell] = row
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return row

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows.values())

    def run(self, cells: Iterable[tuple[str, Callable[[], dict[str, Any]]]], *,
            progress: bool = True, desc: str = "cells") -> list[dict[str, Any]]:
        """Runs each `(cell_id, fn)` not yet recorded, records `fn()`; returns rows in cell order."""
        cells = list(cells)
        out = []
        for cell, fn in tqdm(cells, disable=not progress, desc=desc, unit="cell"):
            row = self.get(cell)
            if row is None:
                row = self.record(cell, fn())
            out.append(row)
        return out


def _to_json(x: Any) -> Any:
    if isinstance(x, (np.generic, np.ndarray)):
        return np.asarray(x).tolist()
    if isinstance(x, jax.Array):
        return np.asarray(x).tolist()
    return str(x)
