"""What the GFlowNet experiment scripts share: the loss comparison's config and a metric check.

`HypergridLosses` is the static config of experiments/gfn_hypergrid.py (every loss of
`lfx.gfn.losses.LOSSES` on one hypergrid, each a separate run), `OCGFNRun` / `OCGFNAdaptSettings`
those of experiments/gfn_ocgfn.py. `run_recipe` trains one recipe, vmapped over settings x seeds,
as a harness run in a sub-folder of the experiment's workdir (its own lock, fingerprint,
checkpoints and metric rows), so an experiment made of several runs resumes each exactly.
`finite_train_metrics` wraps a harness `run` so that a non-finite *training* metric stops the run
before anything of its chunk is written: the GFlowNet recipes report exact evaluations every
`eval_every` iterations and NaN in between ("not evaluated"), so the harness's own check of every
metric cannot be used for them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from lfx.experiment import (
    MetricWriter,
    NonFiniteMetricError,
    Workdir,
    recipe_functions,
    run_chunked,
)
from lfx.experiment.config import ConfigError
from lfx.gfn import losses as gfn_losses
from lfx.gfn.train import GFNConfig, validate


def parse_names(spec: str, known, field: str) -> list[str]:
    """'tb,db' -> ['tb', 'db'], refusing an empty list, a repeat and a name not in `known`."""
    names = [s.strip() for s in str(spec).split(",") if s.strip()]
    if not names:
        raise ConfigError(f"config.{field} is empty; give a comma-separated list of {sorted(known)}.")
    bad = [n for n in names if n not in known]
    if bad:
        raise ConfigError(f"config.{field}: unknown {', '.join(repr(b) for b in bad)}; choose from "
                          f"{sorted(known)}, e.g. --config.{field}={','.join(sorted(known)[:2])}.")
    if len(set(names)) != len(names):
        raise ConfigError(f"config.{field} names one entry twice: {spec!r}.")
    return names


@dataclasses.dataclass(frozen=True)
class HypergridLosses:
    """The loss comparison on hypergrid (experiments/gfn_hypergrid.py).

    dim, height, r0, r1, r2: the hypergrid and its reward bands; losses: comma-separated keys of
    `lfx.gfn.losses.LOSSES`, each trained as its own run; the rest as in `GFNConfig` (flow matching
    runs without a learned PB and without replay, whatever learned_pb / replay_batch say).
    """

    dim: int = 2
    height: int = 8
    r0: float = 0.1
    r1: float = 0.5
    r2: float = 2.0
    losses: str = "tb,db,subtb,fm,logz_var"
    batch_size: int = 16
    num_iterations: int = 2000
    eval_every: int = 100
    hidden: tuple = (256, 256)
    learned_pb: bool = False
    replay_batch: int = 0
    # "padded" is the rollout the results in docs/results/gfn.md were recorded with; "auto" runs TB
    # and log-partition variance on the packed path (lfx.gfn.train.resolve_rollout).
    rollout: str = "padded"

    def loss_names(self) -> list[str]:
        return parse_names(self.losses, gfn_losses.LOSSES, "losses")

    def gfn_config(self, loss: str) -> GFNConfig:
        return GFNConfig(
            env="hypergrid",
            env_kwargs=(("dim", self.dim), ("height", self.height), ("r0", self.r0), ("r1", self.r1),
                        ("r2", self.r2)),
            loss=loss, batch_size=self.batch_size, num_iterations=self.num_iterations,
            hidden=tuple(self.hidden), learned_pb=self.learned_pb and loss != "fm",
            replay_batch=0 if loss == "fm" else self.replay_batch, eval_every=self.eval_every,
            rollout=self.rollout,
        )

    def validate(self) -> None:
        """Raises ConfigError, saying what to change, before anything is built or opened."""
        for name in ("dim", "height"):
            if getattr(self, name) < 1:
                raise ConfigError(f"config.{name} must be >= 1, got {getattr(self, name)}.")
        if self.eval_every < 1:
            raise ConfigError(f"config.eval_every must be >= 1 (the exact TV is the result), got "
                              f"{self.eval_every}.")
        for loss in self.loss_names():
            try:
                validate(self.gfn_config(loss))
            except ValueError as err:
                raise ConfigError(f"loss {loss!r}: {err}") from None


def finite_train_metrics(run: Callable, prefix: str = "train/") -> Callable:
    """`run(state, n)` that raises NonFiniteMetricError at the first non-finite `prefix` metric.

    `state.step` ([H, S] iterations done) gives the update; the message names the update, the
    metric and the (setting, seed) index, and nothing of the chunk reaches the harness's files.
    """

    def checked(state: Any, n: int):
        done = int(np.asarray(jax.device_get(state.step)).reshape(-1)[0])
        state, metrics = run(state, n)
        for name in sorted(k for k in metrics if k.startswith(prefix)):
            x = np.asarray(jax.device_get(metrics[name]), np.float64)
            bad = np.argwhere(~np.isfinite(x))
            if len(bad):
                first = bad[np.argmin(bad[:, -1])]
                raise NonFiniteMetricError(
                    f"Metric {name!r} became non-finite at update {done + int(first[-1]) + 1} "
                    f"(setting {int(first[0])}, seed {int(first[1])}); the run stopped and the last "
                    f"checkpoint was kept. Lower the learning rate or check the inputs.")
        return state, metrics

    return checked


@dataclasses.dataclass(frozen=True)
class OCGFNRun:
    """How experiments/gfn_ocgfn.py runs (besides `OCGFNConfig`, the pre-training's static config).

    mode: "pretrain" (success rate over `seeds` seeds) or "adapt" (one pre-trained OC-GFN, adapted
    with `seeds` seeds against TB from scratch); seed i is `jax.random.key(first_seed + i)` in
    pre-training and `key(1000 + first_seed + i)` in adaptation (the recorded results' seeds);
    pretrain_seed: the adapt mode's pre-training seed; pretrained_path: load that OC-GFN instead
    (flax msgpack); exact_eval: exact TV / direct conversion (enumerates the DAG). chunk_size,
    checkpoint_every, keep_checkpoints: the harness's (`lfx.experiment.RunConfig`).
    """

    mode: str = "pretrain"
    seeds: int = 5
    first_seed: int = 0
    pretrain_seed: int = 0
    pretrained_path: str = ""
    exact_eval: bool = True
    chunk_size: int = 250
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2

    def validate(self) -> None:
        if self.mode not in ("pretrain", "adapt"):
            raise ConfigError(f"config.mode must be 'pretrain' or 'adapt', got {self.mode!r}.")
        if self.seeds < 1:
            raise ConfigError(f"config.seeds must be >= 1, got {self.seeds}.")
        if self.first_seed < 0 or self.pretrain_seed < 0:
            raise ConfigError(f"config.first_seed and config.pretrain_seed must be >= 0, got "
                              f"{self.first_seed} and {self.pretrain_seed}.")
        self.run_config().validate()

    def run_config(self, seed_offset: int = 0):
        from lfx.experiment import RunConfig  # noqa: PLC0415

        return RunConfig(seed=self.first_seed + seed_offset, num_seeds=self.seeds,
                         chunk_size=self.chunk_size, checkpoint_every=self.checkpoint_every,
                         keep_checkpoints=self.keep_checkpoints)


@dataclasses.dataclass(frozen=True)
class OCGFNAdaptSettings:
    """The adapt mode's predictor (`lfx.gfn.ocgfn_adapt`) and its TB-from-scratch baseline.

    lr, epsilon: both runs; outcome_epsilon: the predictor's per-slot exploration of outcomes;
    logz_lr: the baseline's log Z step. All traced in the recipes.
    """

    batch_size: int = 16
    num_iterations: int = 1000
    num_outcomes: int = 4
    lr: float = 1e-3
    logz_lr: float = 0.1
    epsilon: float = 0.05
    outcome_epsilon: float = 0.1
    eval_every: int = 100


def as_dict(x: Any) -> dict[str, Any]:
    """A dataclass (static config) or struct dataclass (HParams, possibly batched) as JSON-able dict."""
    return {k: (np.asarray(v).tolist() if isinstance(v, (np.ndarray, jax.Array)) else v)
            for k in x.__dataclass_fields__ for v in [getattr(x, k)]}


def sub_runs_have_checkpoints(path: str) -> bool:
    """An experiment folder counts as checkpointed when any sub-run in it has a checkpoint."""
    if not os.path.isdir(path):
        return False
    for d in os.listdir(path):
        c = os.path.join(path, d, "checkpoints")
        if os.path.isdir(c) and any(s.isdigit() for s in os.listdir(c)):
            return True
    return False


def run_recipe(recipe: Any, keys: jax.Array, hparams: Any, path: str, fingerprint: dict, run_cfg: Any,
               *args: Any, resume: bool = False, progress: bool = True, stop_after: int | None = None,
               progress_metric: str = "train/loss", tensorboard: bool = False, wandb: str = "",
               shard: Callable | None = None, steps_per_update: int = 0):
    """Trains `recipe` ([H] settings `hparams` x [S] `keys`) as a harness run in folder `path`.

    Returns (state [H, S, ...], metrics [H, S, done], complete): `complete` is False when
    `stop_after` stopped the run early (a killed run, in tests). Checkpoints every
    `run_cfg.checkpoint_every` iterations; `resume` continues from the newest one.
    """
    init, run = recipe_functions(recipe, keys, hparams, *args, shard=shard)
    with Workdir.open(path, fingerprint, name=os.path.basename(path), resume=resume) as wd:
        writer = MetricWriter(wd.path, batch_names=("setting", "seed"),
                              steps_per_update=steps_per_update, tensorboard=tensorboard, wandb=wandb)
        try:
            state, metrics = run_chunked(
                init, finite_train_metrics(run), total_updates=recipe.num_updates,
                chunk_size=run_cfg.chunk_size, workdir=wd, checkpoint_every=run_cfg.checkpoint_every,
                keep_checkpoints=run_cfg.keep_checkpoints, writer=writer, nan_check=False,
                progress=progress, progress_metric=progress_metric, stop_after=stop_after,
            )
        finally:
            writer.close()
    done = next(iter(metrics.values())).shape[-1]
    return state, metrics, done == recipe.num_updates
