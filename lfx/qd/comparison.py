"""A comparison of lfx.qd's algorithms on one sparse-reward task (the logic of experiments/qd_sparse.py).

The configuration is `ComparisonConfig` (static), `HParams` (traced, `--sweep`-able) and the
harness's `RunConfig`. `build(...)` checks all of it and builds every algorithm before anything
compiles; each algorithm is then either

* a scan `QDRecipe` (ns, random, openai_es, map_elites): every setting x seed in one vmapped jitted
  call per chunk of generations, through `lfx.experiment.run_chunked` (checkpoints, exact resume,
  one metric row per setting, seed and generation in `<workdir>/<algorithm>/metrics.jsonl`), or
* a host-loop run (taxons, serene, stax: autoencoder retraining and emitter scheduling on the
  host): one `lfx.experiment.CellLog` cell per setting and seed, a resumed run skipping the
  finished ones.

Seeds: run i of a setting uses `jax.random.key(seed + i)`, i < num_seeds (so seed 0, num_seeds 5
are the seeds 0-4 of docs/results/qd.md).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from lfx.experiment import (
    ConfigError,
    MetricWriter,
    RunConfig,
    Workdir,
    check_finite_hparams,
    from_configdict,
    recipe_functions,
    run_chunked,
    stack_hparams,
)
from lfx.experiment import cli as experiment_cli
from lfx.qd.autoencoder import AEConfig
from lfx.qd.baselines import BASELINES, BaselineConfig
from lfx.qd.explore import ExplorerConfig, make_explorer, run_explorer
from lfx.qd.ns import NSConfig, make_ns
from lfx.qd.recipe import METRICS, HParams, QDRecipe
from lfx.qd.serene import VARIANTS as SERENE_VARIANTS
from lfx.qd.serene import SereneConfig, make_serene, run_serene
from lfx.qd.task import Task, make_task

SCAN_ALGORITHMS = ("ns", "random", "openai_es", "map_elites")
HOST_ALGORITHMS = ("taxons", "serene", "stax")
ALGORITHMS = ("ns", "taxons", "serene", "stax", "random", "openai_es", "map_elites")


@dataclasses.dataclass(frozen=True)
class ComparisonConfig:
    """Static settings of a comparison (shapes, loop lengths, which algorithms).

    env, env_kwargs, hidden, image_size: the task (`lfx.qd.task.make_task`).
    algorithms: names from `ALGORITHMS`, run in this order.
    budget: evaluations per run.
    population_size ... k, archive_strategy: novelty search (also the exploration half of SERENE /
      STAX, TAXONS); the baselines use 2 x population_size per generation. archive_strategy:
      "random" (the authors' default) or "novel" (lfx before issue 19).
    latent_dim, retrain_every: TAXONS / STAX's autoencoder.
    serene_variant, serene_chunk_size, emitter_population, stagnation_generations: SERENE / STAX's
      scheduler: "authors" (GPaolo/SERENE, STAX) or "lfx_v1" (lfx before issue 19; the only one
      that reads stagnation_generations). See `lfx.qd.serene`.

    The floats a user sweeps (mutation sigma, OpenAI-ES's es_sigma / es_lr, ...) are `HParams`.
    """

    env: str = "Curling-sparse"
    env_kwargs: tuple = ()
    algorithms: tuple[str, ...] = ALGORITHMS
    budget: int = 10_000
    hidden: tuple[int, ...] = (16,)
    image_size: int = 32
    population_size: int = 50
    offspring_per_parent: int = 2
    archive_capacity: int = 5000
    archive_add: int = 5
    archive_strategy: str = "random"
    k: int = 15
    latent_dim: int = 10
    retrain_every: int = 30
    serene_variant: str = "authors"
    serene_chunk_size: int = 1000
    emitter_population: int = 6
    stagnation_generations: int = 10

    def validate(self) -> None:
        """Refuses what cannot run, naming the field (before anything compiles)."""
        if not self.algorithms:
            raise ConfigError(f"config.algorithms is empty; name some of {ALGORITHMS}.")
        for a in self.algorithms:
            if a not in ALGORITHMS:
                raise ConfigError(f"config.algorithms: unknown algorithm {a!r}; choose from "
                                  f"{ALGORITHMS}.")
        if len(set(self.algorithms)) != len(self.algorithms):
            raise ConfigError(f"config.algorithms names an algorithm twice: {self.algorithms}.")
        if self.budget <= 0:
            raise ConfigError(f"config.budget (evaluations per run) must be positive, got "
                              f"{self.budget}.")
        for name in ("population_size", "offspring_per_parent", "archive_capacity", "k",
                     "latent_dim", "retrain_every", "serene_chunk_size", "emitter_population",
                     "stagnation_generations"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"config.{name} must be positive, got {getattr(self, name)}.")
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise ConfigError(f"config.hidden must be positive layer sizes, got {self.hidden}.")
        if self.image_size < 0 or self.image_size % 4:
            raise ConfigError(f"config.image_size must be a multiple of 4 (0: no images), got "
                              f"{self.image_size}.")
        learned = [a for a in self.algorithms if a in ("taxons", "stax")]
        if learned and not self.image_size:
            raise ConfigError(f"{learned} learn from images: config.image_size must be > 0.")
        if self.serene_variant not in SERENE_VARIANTS:
            raise ConfigError(f"config.serene_variant must be one of {SERENE_VARIANTS}, got "
                              f"{self.serene_variant!r}.")
        for name in ("ns_config", "baseline_config"):
            try:
                getattr(self, name)()
            except ValueError as err:
                raise ConfigError(f"config: {err}") from None

    def ns_config(self) -> NSConfig:
        return NSConfig(population_size=self.population_size,
                        offspring_per_parent=self.offspring_per_parent,
                        archive_capacity=self.archive_capacity, archive_add=self.archive_add, k=self.k,
                        archive_strategy=self.archive_strategy)

    def baseline_config(self) -> BaselineConfig:
        return BaselineConfig(population_size=2 * self.population_size)

    def explorer_config(self, mode: str) -> ExplorerConfig:
        return ExplorerConfig(mode=mode, ns=self.ns_config(),
                              ae=AEConfig(image_size=self.image_size, latent_dim=self.latent_dim),
                              retrain_every=self.retrain_every)

    def serene_config(self, mode: str) -> SereneConfig:
        return SereneConfig(explorer=self.explorer_config(mode), variant=self.serene_variant,
                            chunk_size=self.serene_chunk_size,
                            emitter_population=self.emitter_population,
                            stagnation_generations=self.stagnation_generations)


class HostRun(NamedTuple):
    """A host-loop algorithm: `run(key, hparams) -> (history [summary per generation], extras)`."""

    run: Callable[[jax.Array, HParams], tuple[list[dict[str, float]], dict[str, Any]]]


def _host_run(name: str, task: Task, config: ComparisonConfig) -> HostRun:
    if name == "taxons":
        cfg = config.explorer_config("taxons")
        fns = make_explorer(task, cfg)

        def run(key, hp):
            _, _, hist = run_explorer(key, task, cfg, config.budget, hp, functions=fns)
            return hist, {}

        return HostRun(run)
    fns = make_serene(task, config.serene_config("ns" if name == "serene" else "stax"))

    def run(key, hp):
        _, hist, stats = run_serene(key, task, fns.config, config.budget, hp, functions=fns)
        stats = {k: v for k, v in stats.items() if k not in ("phases", "trace")}
        stats["reward_archive_best"] = max(stats.pop("reward_archive"), default=0.0)
        return hist, stats

    return HostRun(run)


def make_algorithm(name: str, task: Task, config: ComparisonConfig) -> QDRecipe | HostRun:
    """The recipe (scan algorithms) or host run of `name`; builds, never compiles."""
    if name == "ns":
        return make_ns(task, config.ns_config(), config.budget)
    if name in BASELINES:
        return BASELINES[name](task, config.baseline_config(), config.budget)
    if name in HOST_ALGORITHMS:
        return _host_run(name, task, config)
    raise ConfigError(f"Unknown algorithm {name!r}; choose from {ALGORITHMS}.")


class Comparison(NamedTuple):
    """Everything a comparison needs, checked (see `build`)."""

    config: ComparisonConfig
    run: RunConfig
    settings: list[HParams]
    setting_dicts: list[dict[str, float]]
    labels: list[str]
    task: Task
    algorithms: dict[str, QDRecipe | HostRun]

    @property
    def seeds(self) -> list[int]:
        return [self.run.seed + i for i in range(self.run.num_seeds)]

    def keys(self) -> jax.Array:
        return jax.numpy.stack([jax.random.key(s) for s in self.seeds])

    def fingerprint(self) -> dict[str, Any]:
        """What fixes the results (the workdir's run.json)."""
        return {"qd": dataclasses.asdict(self.config), "run": dataclasses.asdict(self.run),
                "hparams": self.setting_dicts}


def build(cd, sweep: str = "") -> Comparison:
    """ConfigDict (+ `--sweep`) -> a checked `Comparison`; raises `ConfigError` naming the field.

    Nothing compiles here: the task is built (an unknown env name is refused) and every algorithm's
    recipe or host run is built, which checks the budget against the population.
    """
    config, run, base = from_configdict(cd, ComparisonConfig, RunConfig, hparams=HParams)
    config.validate()
    run.validate()
    settings, dicts, labels = experiment_cli.sweep_settings(base, sweep)
    for hp in settings:
        check_finite_hparams(hp)
        try:
            hp.validate()
        except ValueError as err:
            raise ConfigError(f"config.{err}") from None
    try:
        task = make_task(config.env, hidden=tuple(config.hidden), image_size=config.image_size,
                         **dict(config.env_kwargs))
    except (ValueError, TypeError) as err:
        raise ConfigError(f"config.env / config.env_kwargs: {err}") from None
    try:
        algorithms = {a: make_algorithm(a, task, config) for a in config.algorithms}
    except ValueError as err:
        raise ConfigError(f"config: {err}") from None
    return Comparison(config, run, settings, dicts, labels, task, algorithms)


def has_progress(path: str) -> bool:
    """Whether a comparison's workdir holds anything a rerun could overwrite (for `Workdir.open`)."""
    if os.path.exists(os.path.join(path, "results.jsonl")) and os.path.getsize(
            os.path.join(path, "results.jsonl")) > 0:
        return True
    for a in SCAN_ALGORITHMS:
        sub = os.path.join(path, a)
        ckpt = os.path.join(sub, "checkpoints")
        if os.path.isdir(ckpt) and any(d.isdigit() for d in os.listdir(ckpt)):
            return True
        metrics = os.path.join(sub, "metrics.jsonl")
        if os.path.exists(metrics) and os.path.getsize(metrics) > 0:
            return True
    return False


def run_scan(comparison: Comparison, name: str, wd: Workdir, *, resume: bool, progress: bool = True,
             stop_after: int | None = None) -> dict[str, np.ndarray] | None:
    """Runs scan algorithm `name` over every setting x seed in `<wd>/<name>/` through the harness.

    Returns its metrics `[settings, seeds, generations]`, or None when `stop_after` stopped it early.
    """
    recipe = comparison.algorithms[name]
    run_cfg = comparison.run
    hparams = stack_hparams(comparison.settings)
    init, run = recipe_functions(recipe, comparison.keys(), hparams)
    sub = Workdir.open(wd.file(name), {**comparison.fingerprint(), "algorithm": name},
                       name=name, resume=resume)
    with sub:
        writer = MetricWriter(sub.path, batch_names=("setting", "seed"))
        try:
            _, metrics = run_chunked(
                init, run, total_updates=recipe.num_updates, chunk_size=run_cfg.chunk_size,
                workdir=sub, checkpoint_every=run_cfg.checkpoint_every,
                keep_checkpoints=run_cfg.keep_checkpoints, writer=writer, progress=progress,
                progress_metric="qd/coverage", stop_after=stop_after)
        finally:
            writer.close()
    if metrics["qd/evaluations"].shape[-1] < recipe.num_updates:
        return None
    return metrics


def scan_rows(comparison: Comparison, name: str, metrics: dict[str, np.ndarray],
              wall_s: float) -> list[tuple[str, dict[str, Any]]]:
    """One (cell id, row) per setting and seed from a finished scan run's metrics."""
    out = []
    n_runs = len(comparison.settings) * len(comparison.seeds)
    for h, label in enumerate(comparison.labels):
        for i, seed in enumerate(comparison.seeds):
            final = {m: np.asarray(metrics[f"qd/{m}"][h, i, -1]).item() for m in METRICS}
            out.append((cell_id(name, h, seed), {
                "algorithm": name, "setting": h, "label": label, "seed": seed, **final,
                "wall_s": wall_s / n_runs}))
    return out


def host_cell(comparison: Comparison, name: str, h: int, seed: int) -> Callable[[], dict[str, Any]]:
    """The `CellLog` function of host-loop algorithm `name`, setting h, seed."""

    def fn():
        t = time.time()
        hist, extra = comparison.algorithms[name].run(jax.random.key(seed), comparison.settings[h])
        return {"algorithm": name, "setting": h, "label": comparison.labels[h], "seed": seed,
                **hist[-1], **extra, "wall_s": time.time() - t, "history": thin(hist)}

    return fn


def cell_id(name: str, h: int, seed: int) -> str:
    return f"{name}/setting{h}/seed{seed}"


def thin(hist: list[dict[str, Any]], n: int = 60) -> list[dict[str, Any]]:
    """About n points of a history, always the last."""
    idx = sorted(set(np.linspace(0, len(hist) - 1, n).astype(int).tolist()))
    return [hist[i] for i in idx]


def summarise(comparison: Comparison, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """summary.json: per algorithm (and setting, in a sweep) mean / std / per-seed of every final."""
    results = {}
    for name in comparison.config.algorithms:
        for h, label in enumerate(comparison.labels):
            rs = sorted((r for r in rows if r["algorithm"] == name and r["setting"] == h),
                        key=lambda r: r["seed"])
            if not rs:
                continue
            keys = [k for k, v in rs[0].items() if isinstance(v, (int, float)) and not isinstance(
                v, bool) and k not in ("setting", "seed")]
            key = name if len(comparison.labels) == 1 else f"{name} [{label}]"
            results[key] = {k: {"mean": float(np.mean([r[k] for r in rs])),
                                "std": float(np.std([r[k] for r in rs])),
                                "per_seed": [r[k] for r in rs]} for k in keys}
    return {"env": comparison.config.env, "budget": comparison.config.budget,
            "seeds": comparison.seeds, "settings": comparison.setting_dicts, "results": results}
