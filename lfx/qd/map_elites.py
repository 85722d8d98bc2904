"""MAP-Elites (Mouret & Clune 2015, "Illuminating search spaces by mapping elites", arXiv:1504.04909).

    repertoire <- add(empty, X_0, d(X_0), f(X_0))                       X_0: population_size genomes
    for g = 1 .. num_updates:   X_g ~ emitter(repertoire)               [B, D], one vmapped rollout
                                repertoire <- add(repertoire, X_g, d(X_g), f(X_g))

with a grid or CVT repertoire (`lfx.qd.repertoire`) and a Gaussian, iso-line or MAP-Elites-ES
emitter (`lfx.qd.emitters`): QDax's `MAPElites.update` (qdax/core/map_elites.py,
adaptive-intelligent-robotics/QDax 0.5.0) as one `lax.scan`.

    recipe = make_map_elites(task, MapElitesConfig(repertoire="cvt", emitter="iso_line"), budget=10_000)
    state, metrics = recipe.train(key, HParams(sigma=0.05, line_sigma=0.2))

The recipe has lfx.qd's shape (`lfx.qd.recipe.QDRecipe`): generation g uses `fold_in(key, g)`, every
generation asks the budget for B = `emitter.batch_size` evaluations, so `num_updates` is fixed before
anything runs and `jax.vmap` over keys and over `HParams` batches is one call. Metrics per generation
([num_updates] each): the shared `Tracker`'s `qd/*` (coverage of the 50 x 50 visit grid of every
evaluated policy, ...) and the repertoire's `me/qd_score` (sum over filled cells of fitness +
`qd_offset`, QDax's definition), `me/coverage` (filled fraction) and `me/max_fitness`.

`HParams` (traced) holds sigma (Gaussian / iso-line isotropic std), line_sigma (iso-line), es_sigma
and es_lr (MAP-Elites-ES); the recipe also takes lfx.qd's shared `lfx.qd.recipe.HParams` (its sigma,
es_sigma, es_lr; line_sigma from a `line_sigma` field when it has one, else 0.2), so it runs in the
comparison harness beside NS / SERENE / STAX. CVT centroids are computed once, when the recipe is
built (`cvt_seed`), and shared by every seed, as QDax computes them once per experiment.
"""

from __future__ import annotations

import dataclasses

import flax
import jax
import jax.numpy as jnp

from lfx.qd import emitters as emitters_lib
from lfx.qd import recipe as qd_recipe
from lfx.qd import repertoire as rep_lib
from lfx.qd.recipe import QDRecipe, QDState, generations_for_budget, tracker_metrics
from lfx.qd.task import Task, evaluate_granted, init_tracker

REPERTOIRES = ("grid", "cvt")
EMITTERS = ("gaussian", "iso_line", "es")
LINE_SIGMA = 0.2  # Vassiliades & Mouret 2018's sigma_line (their sigma_iso is 0.01 on [0, 1] genomes)


@flax.struct.dataclass
class HParams:
    """Traced hyperparameters of MAP-Elites (a batch with a leading axis is a sweep).

    sigma: std of the Gaussian mutation, and the isotropic std of iso-line variation.
    line_sigma: iso-line's std along x_j - x_i.
    es_sigma, es_lr: MAP-Elites-ES's sample std and Adam learning rate (QDax's MEESConfig defaults).
    """

    sigma: float = 0.05
    line_sigma: float = LINE_SIGMA
    es_sigma: float = 0.02
    es_lr: float = 0.01

    def validate(self) -> None:
        """Refuses values that cannot be meant (skips traced values)."""
        for name, positive in (("sigma", False), ("line_sigma", False), ("es_sigma", True), ("es_lr", True)):
            v = getattr(self, name)
            if isinstance(v, jax.core.Tracer):
                continue
            if not (v > 0 if positive else v >= 0):
                raise ValueError(f"hparams.{name} must be {'positive' if positive else '>= 0'}, got {v}.")

    @classmethod
    def from_qd(cls, hp: qd_recipe.HParams) -> HParams:
        """MAP-Elites' HParams from lfx.qd's shared ones (sigma, es_sigma, es_lr, line_sigma if any)."""
        return cls(sigma=hp.sigma, line_sigma=getattr(hp, "line_sigma", LINE_SIGMA), es_sigma=hp.es_sigma,
                   es_lr=hp.es_lr)


def as_hparams(hp) -> HParams:
    return hp if isinstance(hp, HParams) else HParams.from_qd(hp)


@dataclasses.dataclass(frozen=True)
class MapElitesConfig:
    """Static settings of MAP-Elites.

    population_size: the initial random genomes, and the children per generation of the Gaussian
      and iso-line emitters.
    repertoire: "grid" (grid_bins per descriptor) or "cvt" (num_centroids CVT cells from cvt_samples
      uniform points, cvt_iterations Lloyd iterations, key `cvt_seed`).
    grid_bins: also the bins of the Tracker's visit grid (lfx.qd's 50 x 50 coverage).
    emitter: "gaussian", "iso_line" or "es" (MAP-Elites-ES: es_population mirrored samples + one
      offspring per generation; es_steps, es_mode, es_l2, es_novelty_k, es_archive_size as
      `lfx.qd.emitters.es_emitter`).
    clip: genome bounds (children and ES offspring).
    qd_offset: added to every filled cell's fitness in the QD-score (QDax's qd_offset; 0 for the
      sparse-reward tasks, whose rewards are >= 0).
    """

    population_size: int = 100
    repertoire: str = "grid"
    grid_bins: int = 50
    num_centroids: int = 2500
    cvt_samples: int = 25_000
    cvt_iterations: int = 30
    cvt_seed: int = 0
    emitter: str = "gaussian"
    es_population: int = 100
    es_steps: int = 10
    es_mode: str = "explore_exploit"
    es_l2: float = 0.02
    es_novelty_k: int = 10
    es_archive_size: int = 1000
    clip: tuple[float, float] | None = (-5.0, 5.0)
    qd_offset: float = 0.0

    def validate(self) -> None:
        """Refuses what cannot run, naming the field (before anything compiles)."""
        if self.repertoire not in REPERTOIRES:
            raise ValueError(f"config.repertoire must be one of {REPERTOIRES}, got {self.repertoire!r}.")
        if self.emitter not in EMITTERS:
            raise ValueError(f"config.emitter must be one of {EMITTERS}, got {self.emitter!r}.")
        for name in ("population_size", "grid_bins", "num_centroids", "cvt_samples", "es_steps",
                     "es_novelty_k", "es_archive_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"config.{name} must be positive, got {getattr(self, name)}.")
        if self.cvt_iterations < 0:
            raise ValueError(f"config.cvt_iterations must be >= 0, got {self.cvt_iterations}.")
        if self.repertoire == "cvt" and self.cvt_samples < self.num_centroids:
            raise ValueError(f"config.cvt_samples ({self.cvt_samples}) must be >= config.num_centroids "
                             f"({self.num_centroids}); raise cvt_samples.")
        if self.es_population < 2 or self.es_population % 2:
            raise ValueError(f"config.es_population (mirrored ES samples) must be even and >= 2, got "
                             f"{self.es_population}.")
        if self.es_mode not in ("exploit", "explore", "explore_exploit"):
            raise ValueError(f"config.es_mode must be 'exploit', 'explore' or 'explore_exploit', got "
                             f"{self.es_mode!r}.")
        if self.clip is not None and not self.clip[0] < self.clip[1]:
            raise ValueError(f"config.clip must be (low, high) with low < high, got {self.clip}.")


@flax.struct.dataclass
class MapElitesState:
    repertoire: rep_lib.Repertoire
    emitter: object  # the emitter's state (None for Gaussian / iso-line)

    @property
    def fitness(self) -> jax.Array:
        """[C] the repertoire's fitnesses (the field name of lfx's MAP-Elites grid before issue 19)."""
        return self.repertoire.fitnesses


def make_repertoire(task: Task, config: MapElitesConfig) -> rep_lib.Repertoire:
    """The empty repertoire of `config` over the task's descriptor box (CVT centroids computed here)."""
    lo, hi = task.descriptor_low, task.descriptor_high
    genome = jnp.zeros((task.genome_dim,), jnp.float32)
    if config.repertoire == "grid":
        shape = (config.grid_bins,) * len(lo)
        return rep_lib.init(genome, rep_lib.grid_centroids(shape, lo, hi), grid_shape=shape, minval=lo,
                            maxval=hi)
    c = rep_lib.cvt_centroids(jax.random.key(config.cvt_seed), config.num_centroids, lo, hi,
                              config.cvt_samples, num_iterations=config.cvt_iterations)
    return rep_lib.init(genome, c)


def make_emitter(config: MapElitesConfig, num_updates: int) -> emitters_lib.Emitter:
    if config.emitter == "gaussian":
        return emitters_lib.gaussian_emitter(config.population_size, config.clip)
    if config.emitter == "iso_line":
        return emitters_lib.isoline_emitter(config.population_size, config.clip)
    return emitters_lib.es_emitter(
        config.es_population, steps=config.es_steps, mode=config.es_mode, l2=config.es_l2,
        novelty_k=config.es_novelty_k, archive_size=min(config.es_archive_size, max(num_updates, 1)),
        clip=config.clip)


def map_elites_functions(task: Task, config: MapElitesConfig, emitter: emitters_lib.Emitter | None = None):
    """MAP-Elites' pieces, unjitted: `init(key, tracker, hparams) -> (MapElitesState, tracker)` and
    `step(key, state, tracker, hparams) -> (MapElitesState, tracker)` (one generation)."""
    config.validate()
    empty = make_repertoire(task, config)
    emitter = emitter or make_emitter(config, config.es_archive_size)
    insert = jnp.asarray(emitter.insert)

    def init(k, tracker, hparams=None):
        k_g, k_e = jax.random.split(k)
        genomes = task.init_genomes(k_g, config.population_size)
        tracker, ev, granted = evaluate_granted(k_e, task, tracker, genomes)
        rep = rep_lib.add(empty, genomes, ev.descriptor, ev.fitness, granted)
        est = emitter.init(jax.random.fold_in(k, 1), rep, genomes, ev.fitness, ev.descriptor)
        return MapElitesState(rep, est), tracker

    def step(k, state, tracker, hparams):
        hp = as_hparams(hparams)
        k_s, k_m, k_e = jax.random.split(k, 3)
        batch, est = emitter.emit(k_s, k_m, state.repertoire, state.emitter, hp)
        tracker, ev, granted = evaluate_granted(k_e, task, tracker, batch)
        rep = rep_lib.add(state.repertoire, batch, ev.descriptor, ev.fitness, granted & insert)
        est = emitter.update(est, rep, batch, ev.fitness, ev.descriptor, granted, hp)
        return MapElitesState(rep, est), tracker

    return init, step


def _strongly_typed(x):
    # as lfx.qd.recipe: a weak-typed leaf of the first chunk would recompile the harness's second call
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        return x
    return jnp.asarray(x, dtype=x.dtype)


def make_map_elites(task: Task, config: MapElitesConfig, budget: int) -> QDRecipe:
    """MAP-Elites on `task` for `budget` evaluations (see the module docstring)."""
    config.validate()
    per_gen = (config.es_population + 1) if config.emitter == "es" else config.population_size
    num = generations_for_budget(budget, config.population_size, per_gen, "MAP-Elites")
    emitter = make_emitter(config, num)
    init_fn, step = map_elites_functions(task, config, emitter)

    def init(key, hparams):
        k0, key = jax.random.split(key)
        me, tracker = init_fn(k0, init_tracker(task, budget, config.grid_bins), hparams)
        state = QDState(key=key, generation=jnp.zeros((), jnp.int32), tracker=tracker, search=me)
        return jax.tree.map(_strongly_typed, state)

    def run(state, hparams, *, num_updates):
        def body(s, _):
            me, tracker = step(jax.random.fold_in(s.key, s.generation), s.search, s.tracker, hparams)
            s = s.replace(generation=s.generation + 1, tracker=tracker, search=me)
            return s, {**tracker_metrics(tracker), **rep_lib.metrics(me.repertoire, config.qd_offset)}

        return jax.lax.scan(body, state, None, length=num_updates)

    def train(key, hparams):
        return run(init(key, hparams), hparams, num_updates=num)

    return QDRecipe(config=config, budget=budget, num_updates=num, init=init, run=run, train=train)
