"""evosax 0.3 strategies behind lfx's conventions: by name, fitness maximised, typed keys.

evosax minimises; lfx maximises. `Strategy.tell` is the ONE place where the sign flips:
evosax receives `-fitness`. Every other lfx function (problems, runs, EvoLLM) speaks maximisation.

Usage::

    strategy = make_strategy("snes", population_size=16, num_dims=10)
    params = strategy.default_params
    state = strategy.init(key, mean, params)
    population, state = strategy.ask(key_ask, state, params)        # [N, D]
    state, metrics = strategy.tell(key_tell, population, fitness, state, params)  # fitness [N], maximised

`metrics` re-expresses evosax's metrics in the maximising convention ("best_fitness" is the largest
fitness seen so far).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from evosax import algorithms as evosax_algorithms
from evosax.core import fitness_shaping as evosax_shaping

from lfx.es import open_es

# Fitness shaping by name (evosax's functions; they see the minimised fitness).
FITNESS_SHAPING: dict[str, Callable] = {
    "centered_rank": evosax_shaping.centered_rank_fitness_shaping_fn,
    "standardize": evosax_shaping.standardize_fitness_shaping_fn,
    "identity": evosax_shaping.identity_fitness_shaping_fn,
}


def _open_es(population_size, solution, *, lr=0.05, lr_decay=1.0, lr_min=0.0, sigma=None,
             sigma_decay=None, sigma_min=0.0, std=0.5, std_decay=1.0, antithetic=True,
             fitness_shaping="centered_rank", **kw):
    """OpenAI-ES (Salimans et al. 2017, arXiv:1703.03864) with Adam; lr and σ traced (`open_es.Params`).

    The keyword values become the strategy's `default_params`; pass other `Params` to
    `init/ask/tell` to change them without recompiling. evosax's default (SGD 1e-3, std 1) barely
    moves on BBOB in tens of generations (FACTS.md), so lfx's default is Adam(lr) and a σ that can
    decay geometrically. `std`/`std_decay` are accepted as evosax's spelling of `sigma`/`sigma_decay`.
    """
    params = open_es.Params(
        lr=lr, lr_decay=lr_decay, lr_min=lr_min, sigma=std if sigma is None else sigma,
        sigma_decay=std_decay if sigma_decay is None else sigma_decay, sigma_min=sigma_min,
    )
    params.validate("open_es")
    if fitness_shaping not in FITNESS_SHAPING:
        raise ValueError(f"fitness_shaping must be one of {sorted(FITNESS_SHAPING)}, got "
                         f"{fitness_shaping!r}.")
    return open_es.TracedOpenES(
        population_size, solution, default_params=params, use_antithetic_sampling=antithetic,
        fitness_shaping_fn=FITNESS_SHAPING[fitness_shaping], **kw,
    )


def _hill_climbing(population_size, solution, *, std=0.5, **kw):
    """Gaussian hill climbing: sample around the best solution so far with a fixed std."""
    return evosax_algorithms.HillClimbing(
        population_size, solution, std_schedule=optax.constant_schedule(std), **kw
    )


def _random_search(population_size, solution, *, x_range=(-5.0, 5.0), **kw):
    """Uniform random search over the box `x_range` (the BBOB search space by default)."""
    lo, hi = x_range

    def sampling_fn(key):
        return jax.random.uniform(key, jnp.shape(solution), minval=lo, maxval=hi)

    return evosax_algorithms.RandomSearch(population_size, solution, sampling_fn=sampling_fn, **kw)


# lfx name -> builder(population_size, solution, **kwargs) -> evosax algorithm.
STRATEGIES: dict[str, Callable[..., Any]] = {
    "random_search": _random_search,
    "hill_climbing": _hill_climbing,
    "open_es": _open_es,
    "snes": evosax_algorithms.SNES,
    "xnes": evosax_algorithms.xNES,
    "cma_es": evosax_algorithms.CMA_ES,
    "sep_cma_es": evosax_algorithms.Sep_CMA_ES,
    "pgpe": evosax_algorithms.PGPE,
}

# Strategies that sample flat vectors [D] only (random search draws from a box of that shape).
_FLAT_ONLY = ("random_search",)

# Metrics whose value is a fitness: negated back to lfx's maximising convention.
_FITNESS_METRICS = ("best_fitness", "best_fitness_in_generation")


@dataclasses.dataclass(frozen=True)
class Strategy:
    """An evosax algorithm with lfx's maximising `tell`. Static: hashable, safe to close over."""

    name: str
    algorithm: Any
    population_size: int
    num_dims: int

    @property
    def default_params(self):
        return self.algorithm.default_params

    def init(self, key: jax.Array, mean: Any, params) -> Any:
        """Strategy state centred at `mean` ([D], or a pytree shaped like the solution)."""
        return self.algorithm.init(key, mean, params)

    def ask(self, key: jax.Array, state, params) -> tuple[Any, Any]:
        """Samples a population: [N, D], or the solution's pytree with a leading [N] on each leaf."""
        return self.algorithm.ask(key, state, params)

    def tell(self, key: jax.Array, population: Any, fitness: jax.Array, state, params):
        """Updates the state from `fitness` [N] (MAXIMISED). The one sign flip of lfx (meta, qd, es).

        evosax minimises, so it is told `-fitness`; its fitness-valued metrics are negated back.
        """
        state, metrics = self.algorithm.tell(key, population, -fitness, state, params)
        metrics = {k: (-v if k in _FITNESS_METRICS else v) for k, v in metrics.items()}
        return state, metrics

    def best(self, state) -> tuple[Any, jax.Array]:
        """(best solution, best fitness, maximised) seen so far; the solution in the input's shape."""
        return self.algorithm._unravel_solution(state.best_solution), -state.best_fitness

    def mean(self, state) -> Any:
        """The search distribution's mean ([D], or the solution's pytree)."""
        return self.algorithm._unravel_solution(state.mean)


def make_strategy(name: str, *, population_size: int, num_dims: int | None = None,
                  solution: Any = None, **kwargs) -> Strategy:
    """Builds an lfx `Strategy` by name.

    Args:
      name: a key of `STRATEGIES` ("random_search", "hill_climbing", "open_es", "snes", "xnes",
        "cma_es", "sep_cma_es", "pgpe") or any evosax algorithm name (`evosax.algorithms.algorithms`).
      population_size: N.
      num_dims: D, for flat solutions [D]; or
      solution: a pytree of arrays (e.g. a network's parameters): the population and the mean then
        have its structure (evosax ravels it internally). Give exactly one of the two.
      **kwargs: forwarded to the builder (e.g. `lr`, `sigma`, `lr_decay`, ... for "open_es", whose
        values become `default_params`; `std` for "hill_climbing").

    Raises:
      ValueError: unknown name, non-positive sizes, both or neither of num_dims/solution, or an odd
        population for OpenAI-ES.
    """
    if (num_dims is None) == (solution is None):
        raise ValueError("make_strategy needs exactly one of num_dims= (flat solutions) and "
                         "solution= (a pytree of arrays).")
    if solution is None:
        if num_dims < 1:
            raise ValueError(f"num_dims must be >= 1, got {num_dims}.")
        solution = jnp.zeros(num_dims)
    elif name in _FLAT_ONLY:
        raise ValueError(f"Strategy {name!r} samples flat vectors; pass num_dims=.")
    size = sum(int(jnp.size(x)) for x in jax.tree.leaves(solution))
    if population_size < 1 or size < 1:
        raise ValueError(
            f"population_size and the solution size must be >= 1, got {population_size}, {size}."
        )
    if name in STRATEGIES:
        builder = STRATEGIES[name]
    elif name in evosax_algorithms.algorithms:
        builder = evosax_algorithms.algorithms[name]
    else:
        raise ValueError(
            f"Unknown strategy {name!r}; choose one of {sorted(STRATEGIES)} or an evosax name "
            f"from evosax.algorithms.algorithms."
        )
    if name in ("open_es", "Open_ES") and population_size % 2:
        raise ValueError(f"OpenAI-ES uses antithetic pairs: population_size must be even, got "
                         f"{population_size}.")
    algorithm = builder(population_size, solution, **kwargs)
    return Strategy(name, algorithm, population_size, size)
