"""Baselines for the sparse-reward tasks: random search, OpenAI-ES on the reward, MAP-Elites.

* Random search: every generation a fresh batch of genomes from the policy initialiser.
* OpenAI-ES (Salimans et al., arXiv:1703.03864) through evosax's `Open_ES` (antithetic sampling,
  centered ranks, Adam): it maximises the episode reward (evosax minimises, so the sign flips here,
  once). On a sparse reward with no signal all ranks tie and the mean does a random walk.
* MAP-Elites (Mouret & Clune, arXiv:1504.04909) with the hand-designed descriptor: a G x G grid over
  the ground-truth descriptor space; each generation mutates uniformly chosen elites (Gaussian,
  sigma) and a child replaces a cell's elite when the cell is empty or the child's reward is higher.

All share lfx.qd's Tracker, so curves are on the same evaluation axis and the same metrics.
"""

from __future__ import annotations

import dataclasses

import flax
import jax
import jax.numpy as jnp
import optax

from lfx.qd import metrics
from lfx.qd.mutation import gaussian_mutation
from lfx.qd.task import Task, evaluate_granted, init_tracker, summary


@dataclasses.dataclass(frozen=True)
class BaselineConfig:
    population_size: int = 100
    sigma: float = 0.05  # MAP-Elites mutation
    es_sigma: float = 0.1
    es_learning_rate: float = 0.05
    grid_bins: int = 50
    clip: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self):
        if self.population_size <= 0 or self.grid_bins <= 0:
            raise ValueError("population_size and grid_bins must be positive.")


_CACHE: dict = {}


def _cached(name, task, config, build):
    """Builds (and jits) a baseline's functions once per (baseline, task, config); the task is kept in
    the value so its id is not recycled."""
    k = (name, id(task), config)
    if k not in _CACHE:
        _CACHE[k] = (task, build())
    return _CACHE[k][1]


def _loop(step, carry, tracker, total_budget):
    history = [summary(tracker)]
    g = 0
    while int(tracker.counter.used) < total_budget:
        carry, tracker = step(g, carry, tracker)
        g += 1
        history.append(summary(tracker))
    return tracker, history


def run_random_search(key, task: Task, config: BaselineConfig, total_budget: int):
    n = config.population_size

    def build():
        def step(k, tracker):
            k_g, k_e = jax.random.split(k)
            tracker, _, _ = evaluate_granted(k_e, task, tracker, task.init_genomes(k_g, n))
            return tracker

        return jax.jit(step)

    step = _cached("random", task, config, build)
    return _loop(lambda g, c, t: (c, step(jax.random.fold_in(key, g), t)), None, init_tracker(task, total_budget), total_budget)


def run_openai_es(key, task: Task, config: BaselineConfig, total_budget: int):
    from evosax.algorithms import Open_ES

    n = config.population_size + config.population_size % 2  # antithetic pairs
    k_init, key = jax.random.split(key)
    x0 = task.init_genomes(k_init, 1)[0]

    def build():
        strategy = Open_ES(n, jnp.zeros_like(x0), optimizer=optax.adam(config.es_learning_rate),
                           std_schedule=optax.constant_schedule(config.es_sigma))
        params = strategy.default_params

        def step(k, state, tracker):
            k_a, k_e, k_t = jax.random.split(k, 3)
            pop, state = strategy.ask(k_a, state, params)
            pop = jnp.clip(pop, *config.clip)
            tracker, ev, granted = evaluate_granted(k_e, task, tracker, pop)
            fitness = -jnp.where(granted, ev.fitness, 0.0)  # evosax minimises: the one sign flip
            state, _ = strategy.tell(k_t, pop, fitness, state, params)
            return state, tracker

        return strategy, params, jax.jit(step)

    strategy, params, step = _cached("openai_es", task, config, build)
    state = strategy.init(k_init, x0, params)
    return _loop(lambda g, s, t: step(jax.random.fold_in(key, g), s, t), state, init_tracker(task, total_budget), total_budget)


@flax.struct.dataclass
class MEGrid:
    genomes: jax.Array  # [G*G, D]
    fitness: jax.Array  # [G*G], -inf where empty


def run_map_elites(key, task: Task, config: BaselineConfig, total_budget: int):
    tracker = init_tracker(task, total_budget, config.grid_bins)
    init, step = map_elites_functions(task, config)
    k0, key = jax.random.split(key)
    me, tracker = init(k0, tracker)
    tracker, history = _loop(lambda i, m, t: step(jax.random.fold_in(key, i), m, t), me, tracker, total_budget)
    return tracker, history


def map_elites_functions(task: Task, config: BaselineConfig):
    """Jitted MAP-Elites (init(key, tracker) -> (grid, tracker), step(key, grid, tracker) -> (grid, tracker))."""
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

    def step(k, me, tracker):
        k_s, k_m, k_e = jax.random.split(k, 3)
        filled = jnp.isfinite(me.fitness)
        idx = jax.random.choice(k_s, g * g, (n,), p=filled / filled.sum())
        kids = gaussian_mutation(k_m, me.genomes[idx], sigma=config.sigma, clip=config.clip)
        tracker, ev, granted = evaluate_granted(k_e, task, tracker, kids)
        return insert(me, kids, ev, granted), tracker

    return _cached("map_elites", task, config, lambda: (jax.jit(init), jax.jit(step)))


BASELINES = {"random": run_random_search, "openai_es": run_openai_es, "map_elites": run_map_elites}
