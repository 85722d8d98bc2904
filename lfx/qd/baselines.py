"""Baselines for the sparse-reward tasks: random search, OpenAI-ES on the reward, MAP-Elites.

* Random search: every generation a fresh batch of genomes from the policy initialiser.
* OpenAI-ES (Salimans et al., arXiv:1703.03864) through `lfx.es.strategies.make_strategy("open_es")`
  (evosax's `Open_ES` with traced lr / sigma: antithetic sampling, centered ranks, Adam), maximising
  the episode reward
  (`Strategy.tell` maximises; lfx.qd never flips a sign). On a sparse reward with no signal all
  ranks tie and the mean does a random walk.
* MAP-Elites (Mouret & Clune, arXiv:1504.04909) with the hand-designed descriptor, through
  `lfx.qd.map_elites`: "map_elites" is a G x G grid over the ground-truth descriptor space with
  Gaussian mutation of uniformly chosen elites (`HParams.sigma`), a child replacing a cell's elite
  when the cell is empty or its reward is higher (lfx's MAP-Elites before issue 19, draw for draw);
  "map_elites_iso" uses iso-line variation (line_sigma 0.2 unless `HParams` has a `line_sigma`),
  "map_elites_cvt" G^2 CVT cells, "map_elites_es" MAP-Elites-ES (`HParams.es_sigma` / `es_lr`).

Each is `make_<baseline>(task, config, budget) -> QDRecipe` (`lfx.qd.recipe`): one `lax.scan` over
generations, jittable and vmappable over keys and `HParams`. All share lfx.qd's Tracker, so curves
are on the same evaluation axis and the same metrics.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from lfx.es.strategies import make_strategy
from lfx.qd.map_elites import MapElitesConfig
from lfx.qd.map_elites import make_map_elites as make_me
from lfx.qd.map_elites import map_elites_functions as me_functions
from lfx.qd.recipe import QDRecipe, generations_for_budget, make_scan_recipe
from lfx.qd.task import Task, evaluate_granted, init_tracker


@dataclasses.dataclass(frozen=True)
class BaselineConfig:
    """Static settings of the baselines.

    population_size: evaluations per generation (OpenAI-ES rounds it up to an even number).
    grid_bins: G of MAP-Elites' G x G grid.
    clip: genome bounds.

    The floats a user sweeps (MAP-Elites' sigma, OpenAI-ES's es_sigma and es_lr) are traced
    `HParams`.
    """

    population_size: int = 100
    grid_bins: int = 50
    clip: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self):
        if self.population_size <= 0 or self.grid_bins <= 0:
            raise ValueError(
                f"population_size and grid_bins must be positive, got {self.population_size} and "
                f"{self.grid_bins}.")

    @property
    def es_population_size(self) -> int:
        return self.population_size + self.population_size % 2  # antithetic pairs


def make_random_search(task: Task, config: BaselineConfig, budget: int) -> QDRecipe:
    """Random search: `population_size` fresh genomes per generation, until the budget is spent."""
    n = config.population_size

    def init_search(key, hparams):
        return None, init_tracker(task, budget), key

    def generation(k, search, tracker, hparams):
        k_g, k_e = jax.random.split(k)
        tracker, _, _ = evaluate_granted(k_e, task, tracker, task.init_genomes(k_g, n))
        return search, tracker

    num = generations_for_budget(budget, 0, n, "random search")
    return make_scan_recipe(config, budget, num, init_search, generation)


def make_openai_es(task: Task, config: BaselineConfig, budget: int) -> QDRecipe:
    """OpenAI-ES on the episode reward from a policy-initialiser genome; genomes clipped.

    `HParams.es_sigma` / `es_lr` are traced (`lfx.es.open_es.Params`: constant, no decay).
    """
    n = config.es_population_size
    strategy = make_strategy("open_es", population_size=n, num_dims=task.genome_dim)

    def es_params(hparams):
        return strategy.default_params.replace(lr=hparams.es_lr, sigma=hparams.es_sigma,
                                               lr_decay=1.0, sigma_decay=1.0)

    def init_search(key, hparams):
        k_init, key = jax.random.split(key)
        x0 = task.init_genomes(k_init, 1)[0]
        return strategy.init(k_init, x0, es_params(hparams)), init_tracker(task, budget), key

    def generation(k, es_state, tracker, hparams):
        params = es_params(hparams)
        k_a, k_e, k_t = jax.random.split(k, 3)
        pop, es_state = strategy.ask(k_a, es_state, params)
        pop = jnp.clip(pop, *config.clip)
        tracker, ev, granted = evaluate_granted(k_e, task, tracker, pop)
        es_state, _ = strategy.tell(k_t, pop, jnp.where(granted, ev.fitness, 0.0), es_state, params)
        return es_state, tracker

    num = generations_for_budget(budget, 0, n, "OpenAI-ES")
    return make_scan_recipe(config, budget, num, init_search, generation)


def me_config(config: BaselineConfig, repertoire: str = "grid", emitter: str = "gaussian") -> MapElitesConfig:
    """The `lfx.qd.map_elites` config of a MAP-Elites baseline: `population_size` children per
    generation, a `grid_bins`^2 grid (or as many CVT cells), MAP-Elites-ES with as many samples
    (rounded down to an even number, plus the offspring)."""
    return MapElitesConfig(population_size=config.population_size, repertoire=repertoire,
                           grid_bins=config.grid_bins, num_centroids=config.grid_bins ** 2,
                           cvt_samples=max(25_000, 10 * config.grid_bins ** 2), emitter=emitter,
                           es_population=max(2, config.population_size - config.population_size % 2),
                           clip=config.clip)


def map_elites_functions(task: Task, config: BaselineConfig):
    """MAP-Elites' pieces, unjitted: `init(key, tracker) -> (state, tracker)`,
    `step(key, state, tracker, hparams) -> (state, tracker)` (one generation; grid + Gaussian)."""
    return me_functions(task, me_config(config))


def _map_elites(repertoire: str, emitter: str):
    def make(task: Task, config: BaselineConfig, budget: int) -> QDRecipe:
        return make_me(task, me_config(config, repertoire, emitter), budget)

    make.__name__ = f"make_map_elites_{repertoire}_{emitter}"
    make.__doc__ = f"MAP-Elites ({repertoire} repertoire, {emitter} emitter) of `lfx.qd.map_elites`."
    return make


make_map_elites = _map_elites("grid", "gaussian")
make_map_elites.__doc__ = ("MAP-Elites on a `grid_bins`^2 grid of the ground-truth descriptor, Gaussian "
                           "mutation (lfx's MAP-Elites before issue 19, draw for draw).")


BASELINES = {"random": make_random_search, "openai_es": make_openai_es,
             "map_elites": make_map_elites,
             "map_elites_iso": _map_elites("grid", "iso_line"),
             "map_elites_cvt": _map_elites("cvt", "gaussian"),
             "map_elites_es": _map_elites("grid", "es")}
