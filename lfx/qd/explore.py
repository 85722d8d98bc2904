"""Exploration drivers: NS with a hand-designed descriptor, TAXONS, and STAX's learned space.

A host-side driver around the jitted NS generation (`lfx.qd.ns`) that owns the autoencoder when the
descriptor is learned. Three modes:

* "ns": hand-designed (ground-truth) descriptor.
* "taxons" (Paolo et al., arXiv:1909.05508): latent code of a conv autoencoder on the image of the
  final state; selection by novelty for the first `surprise_after` (30) generations, then per
  generation a fair coin picks novelty or surprise (reconstruction error); the autoencoder is trained
  on the initial population and retrained every `retrain_every` (30) generations on archive +
  population images, after which every stored descriptor is recomputed.
* "stax" (Paolo et al., arXiv:2203.15474): the same learned space selected by novelty, the
  autoencoder retrained with a validation split and early stopping at growing intervals
  (first after `retrain_every` generations, each interval `interval_growth` times the previous).

`make_explorer(task, config)` builds and jits the pieces once; `Explorer` / `run_explorer` drive
them with traced `HParams`, so seeds and hyperparameter values share one compilation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lfx.qd.autoencoder import AEConfig, make_autoencoder, make_trainer
from lfx.qd.ns import NSConfig, make_generation
from lfx.qd.recipe import HParams
from lfx.qd.task import Task, Tracker, init_tracker, summary

MODES = ("ns", "taxons", "stax")


@dataclasses.dataclass(frozen=True)
class ExplorerConfig:
    mode: str = "ns"
    ns: NSConfig = dataclasses.field(default_factory=NSConfig)
    ae: AEConfig = dataclasses.field(default_factory=AEConfig)
    retrain_every: int = 30
    surprise_after: int = 30
    interval_growth: float = 1.5
    train_steps: int = 300  # TAXONS: Adam steps per (re)training
    epoch_steps: int = 50  # STAX: steps per early-stopping epoch
    max_epochs: int = 20
    patience: int = 3

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}.")
        if self.retrain_every <= 0:
            raise ValueError(f"retrain_every must be positive, got {self.retrain_every}.")
        if self.interval_growth < 1:
            raise ValueError(f"interval_growth must be >= 1, got {self.interval_growth}.")
        for name in ("train_steps", "epoch_steps", "max_epochs", "patience"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")


class ExplorerFunctions(NamedTuple):
    """The jitted pieces of an explorer, built once by `make_explorer` and shared by its runs."""

    task: Task
    config: ExplorerConfig
    init: Callable  # (key, tracker, aux) -> (state, tracker)
    step: Callable  # (key, state, tracker, aux, hparams, use_score, limit) -> (state, tracker, info)
    refresh: Callable  # (state, aux) -> state
    ae_init: Callable | None
    ae_loss: Callable | None
    opt_init: Callable | None
    train_steps: Callable | None
    train_early_stopping: Callable | None
    describe: Callable  # (aux, evaluation) -> [N, B], unjitted (for SERENE / STAX's emitters)
    encode: Callable | None  # jitted (aux, images [N, S, S]) -> [N, B]; None for the hand descriptor


def make_explorer(task: Task, config: ExplorerConfig) -> ExplorerFunctions:
    """Builds and jits the NS generation (and the autoencoder's trainer) of one explorer config.

    Every seed and every `HParams` value reuses the compiled functions: the hyperparameters are
    traced arguments.
    """
    learned = config.mode != "ns"
    if learned and config.ae.image_size != task.image_size:
        raise ValueError(f"AEConfig.image_size ({config.ae.image_size}) must equal the task's "
                         f"image_size ({task.image_size}).")
    ae = [None] * 5
    if learned:
        ae_init, encode, surprise, ae_loss = make_autoencoder(config.ae)
        opt_init, train_steps, train_es = make_trainer(config.ae)
        ae = [ae_init, ae_loss, opt_init, train_steps, train_es]
        descriptor_fn = lambda aux, ev: encode(aux, ev.image)
        dim = config.ae.latent_dim
        score_fn = surprise if config.mode == "taxons" else None
    else:
        descriptor_fn, dim, score_fn = (lambda aux, ev: ev.descriptor), 2, None
    init, step, refresh = make_generation(task, config.ns, descriptor_fn, dim, score_fn,
                                          store_images=learned)
    encode_images = (jax.jit(lambda aux, images: descriptor_fn(aux, _Images(images))) if learned
                     else None)
    return ExplorerFunctions(task, config, jax.jit(init), jax.jit(step), jax.jit(refresh), *ae,
                             descriptor_fn, encode_images)


class _Images(NamedTuple):
    """Stands in for an Evaluation when only images are known (learned descriptors)."""

    image: jax.Array


class Explorer:
    """Host-side NS / TAXONS / STAX driver: `init(key, tracker)`, then `step(key, tracker, limit)`.

    Args:
      task, config: what to explore and how (ignored when `functions` are given).
      hparams: the traced hyperparameters (mutation sigma / probability, autoencoder lr).
      functions: `make_explorer(task, config)`, to share compiled functions between runs.
    """

    def __init__(self, task: Task | None, config: ExplorerConfig | None,
                 hparams: HParams | None = None, functions: ExplorerFunctions | None = None):
        functions = functions if functions is not None else make_explorer(task, config)
        self.fns = functions
        self.task, self.config = functions.task, functions.config
        # float32 arrays: every value (python float or not) hits the same compiled step
        self.hparams = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32),
                                    hparams if hparams is not None else HParams())
        self.learned = self.config.mode != "ns"
        self.aux: Any = None
        self.state = None
        self.generation = 0
        self.next_retrain = 0
        self.interval = float(self.config.retrain_every)
        self.ae_trainings = 0

    # -- autoencoder ---------------------------------------------------------------------------
    def _dataset(self):
        s = self.state
        images = jnp.concatenate([s.images, s.archive.extras], 0)
        valid = jnp.concatenate([s.valid, s.archive.valid], 0).astype(jnp.float32)
        return images, valid

    def train_autoencoder(self, key):
        images, valid = self._dataset()
        c, lr = self.config, self.hparams.ae_lr
        if c.mode == "taxons":
            opt_state = self.fns.opt_init(self.aux, lr)
            self.aux, _, _ = self.fns.train_steps(key, self.aux, opt_state, images, valid, c.train_steps)
        else:
            self.aux, _ = self.fns.train_early_stopping(
                key, self.aux, images, valid > 0, lr, steps_per_epoch=c.epoch_steps,
                max_epochs=c.max_epochs, patience=c.patience)
        self.state = self.fns.refresh(self.state, self.aux)
        self.ae_trainings += 1

    def reconstruction_loss(self):
        images, valid = self._dataset()
        return float(self.fns.ae_loss(self.aux, images, valid))

    # -- search --------------------------------------------------------------------------------
    def init(self, key, tracker: Tracker) -> Tracker:
        k_ae, k_init, k_train = jax.random.split(key, 3)
        if self.learned:
            self.aux = self.fns.ae_init(k_ae)
        self.state, tracker = self.fns.init(k_init, tracker, self.aux)
        if self.learned:
            self.train_autoencoder(k_train)
            self.next_retrain = self.config.retrain_every
        return tracker

    def step(self, key, tracker: Tracker, limit=None, extra_refs=None):
        """One NS generation; `extra_refs` = (descriptors [R, B], valid [R]) are further novelty
        references (SERENE's reward archive). Returns (tracker, info of `lfx.qd.ns`'s step)."""
        k_coin, k_step, k_train = jax.random.split(key, 3)
        use_score = False
        if self.config.mode == "taxons" and self.generation >= self.config.surprise_after:
            use_score = bool(jax.random.bernoulli(k_coin))
        lim = jnp.asarray(tracker.counter.budget if limit is None else limit, jnp.int32)
        self.state, tracker, info = self.fns.step(k_step, self.state, tracker, self.aux, self.hparams,
                                                  jnp.asarray(use_score), lim, extra_refs)
        self.generation += 1
        if self.learned and self.generation >= self.next_retrain:
            self.train_autoencoder(k_train)
            if self.config.mode == "taxons":
                self.next_retrain += self.config.retrain_every
            else:
                self.interval *= self.config.interval_growth
                self.next_retrain += max(round(self.interval), 1)
        return tracker, info

    def reference_genomes(self):
        """Population and archive genomes [M, D] with a validity mask [M] (for emitters' sigma)."""
        s = self.state
        return (jnp.concatenate([s.genomes, s.archive.genomes], 0),
                jnp.concatenate([s.valid, s.archive.valid], 0))


def run_explorer(key, task: Task, config: ExplorerConfig, total_budget: int,
                 hparams: HParams | None = None, *, functions: ExplorerFunctions | None = None,
                 log_every: int = 1):
    """Runs NS / TAXONS / STAX until the budget is spent; returns (tracker, explorer, history).

    Pass `functions=make_explorer(task, config)` to reuse compiled functions across seeds.
    """
    tracker = init_tracker(task, total_budget)
    explorer = Explorer(task, config, hparams, functions)
    k_init, key = jax.random.split(key)
    tracker = explorer.init(k_init, tracker)
    history = [summary(tracker)]
    g = 0
    while int(tracker.counter.used) < total_budget:
        tracker, _ = explorer.step(jax.random.fold_in(key, g), tracker)
        g += 1
        if g % log_every == 0 or int(tracker.counter.used) >= total_budget:
            history.append(summary(tracker))
    return tracker, explorer, history
