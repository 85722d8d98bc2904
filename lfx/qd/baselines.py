"""Baselines for the sparse-reward tasks: random search, OpenAI-ES on the reward, MAP-Elites.

* Random search: every generation a fresh batch of genomes from the policy initialiser.
* OpenAI-ES (Salimans et al., arXiv:1703.03864) through `lfx.es.strategies.make_strategy("open_es")`
  (evosax's `Open_ES` with traced lr / sigma: antithetic sampling, centered ranks, Adam), maximising
  the episode reward
  (`Strategy.tell` maximises; lfx.qd never flips a sign). On a sparse reward with no signal all
  ranks tie and the mean does a random walk.
* MAP-Elites (Mouret & Clune, arXiv:1504.04909) with the hand-designed descriptor: a G x G grid over
  the ground-truth descriptor space; each generation mutates uniformly chosen elites (Gaussian,
  `HParams.sigma`) and a child replaces a cell's elite when the cell is empty or its reward is higher.

Each is `make_<baseline>(task, config, budget) -> QDRecipe` (`lfx.qd.recipe`): one `lax.scan` over
generations, jittable and vmappable over keys and `HParams`. All share lfx.qd's Tracker, so curves
are on the same evaluation axis and the same metrics.
"""

from __future__ import annotations

import dataclasses

import flax
import jax
import jax.numpy as jnp

from lfx.es.strategies import make_strategy
from lfx.qd import metrics
from lfx.qd.mutation import gaussian_mutation
from lfx.qd.recipe import HParams, QDRecipe, generations_for_budget, make_scan_recipe
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


@flax.struct.dataclass
class MEGrid:
    genomes: jax.Array  # [G*G, D]
    fitness: jax.Array  # [G*G], -inf where empty


def map_elites_functions(task: Task, config: BaselineConfig):
    """MAP-Elites' pieces, unjitted: `init(key, tracker) -> (grid, tracker)`,
    `step(key, grid, tracker, hparams) -> (grid, tracker)` (one generation)."""
    n, g = config.population_size, config.grid_bins
    grid0 = metrics.init_grid(task.descriptor_low, task.descriptor_high, g)

    def insert(me, genomes, ev, granted):
        cell = metrics.cell_index(grid0, ev.descriptor)
        flat = cell[:, 0] * g + cell[:, 1]
        fit = jnp.where(granted, ev.fitness, -jnp.inf)
        # best child per cell first (scatter-max), then replace where strictly better
        best = jnp.full((g * g,), -jnp.inf).at[flat].max(fit)
        winner = (fit == best[flat]) & granted
        # a unique winner per cell: the lowest index among ties
        first = jnp.full((g * g,), n).at[jnp.where(winner, flat, g * g)].min(jnp.arange(n), mode="drop")
        is_first = winner & (first[flat] == jnp.arange(n))
        better = is_first & (fit > me.fitness[flat])
        tgt = jnp.where(better, flat, g * g)
        return MEGrid(genomes=me.genomes.at[tgt].set(genomes, mode="drop"),
                      fitness=me.fitness.at[tgt].set(fit, mode="drop"))

    def init(k, tracker):
        k_g, k_e = jax.random.split(k)
        genomes = task.init_genomes(k_g, n)
        tracker, ev, granted = evaluate_granted(k_e, task, tracker, genomes)
        me = MEGrid(jnp.zeros((g * g, task.genome_dim)), jnp.full((g * g,), -jnp.inf))
        return insert(me, genomes, ev, granted), tracker

    def step(k, me, tracker, hparams: HParams):
        k_s, k_m, k_e = jax.random.split(k, 3)
        filled = jnp.isfinite(me.fitness)
        idx = jax.random.choice(k_s, g * g, (n,), p=filled / filled.sum())
        kids = gaussian_mutation(k_m, me.genomes[idx], sigma=hparams.sigma, clip=config.clip)
        tracker, ev, granted = evaluate_granted(k_e, task, tracker, kids)
        return insert(me, kids, ev, granted), tracker

    return init, step


def make_map_elites(task: Task, config: BaselineConfig, budget: int) -> QDRecipe:
    """MAP-Elites on a `grid_bins`^2 grid of the ground-truth descriptor."""
    init, step = map_elites_functions(task, config)

    def init_search(key, hparams):
        k0, key = jax.random.split(key)
        me, tracker = init(k0, init_tracker(task, budget, config.grid_bins))
        return me, tracker, key

    num = generations_for_budget(budget, config.population_size, config.population_size,
                                 "MAP-Elites")
    return make_scan_recipe(config, budget, num, init_search, step)


BASELINES = {"random": make_random_search, "openai_es": make_openai_es,
             "map_elites": make_map_elites}
