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
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from evosax import algorithms as evosax_algorithms


def _open_es(population_size, solution, *, lr=0.05, std=0.5, std_decay=1.0, **kw):
    """OpenAI-ES (Salimans et al. 2017, arXiv:1703.03864) with Adam.

    evosax's default (SGD 1e-3, std 1) barely moves on BBOB in tens of generations (FACTS.md), so
    lfx's default is Adam(lr) and a std that can decay geometrically.
    """
    schedule = (
        optax.constant_schedule(std)
        if std_decay == 1.0
        else optax.exponential_decay(std, transition_steps=1, decay_rate=std_decay)
    )
    return evosax_algorithms.Open_ES(
        population_size, solution, optimizer=optax.adam(lr), std_schedule=schedule, **kw
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

    def init(self, key: jax.Array, mean: jax.Array, params) -> Any:
        """Strategy state centred at `mean` [D]."""
        return self.algorithm.init(key, mean, params)

    def ask(self, key: jax.Array, state, params) -> tuple[jax.Array, Any]:
        """Samples a population [N, D]."""
        return self.algorithm.ask(key, state, params)

    def tell(self, key: jax.Array, population: jax.Array, fitness: jax.Array, state, params):
        """Updates the state from `fitness` [N] (MAXIMISED). The only sign flip in lfx.es."""
        state, metrics = self.algorithm.tell(key, population, -fitness, state, params)
        metrics = {k: (-v if k in _FITNESS_METRICS else v) for k, v in metrics.items()}
        return state, metrics

    def best(self, state) -> tuple[jax.Array, jax.Array]:
        """(best solution [D], best fitness, maximised) seen so far."""
        return state.best_solution, -state.best_fitness

    def mean(self, state) -> jax.Array:
        """The search distribution's mean [D]."""
        return state.mean


def make_strategy(name: str, *, population_size: int, num_dims: int, **kwargs) -> Strategy:
    """Builds an lfx `Strategy` by name.

    Args:
      name: a key of `STRATEGIES` ("random_search", "hill_climbing", "open_es", "snes", "xnes",
        "cma_es", "sep_cma_es", "pgpe") or any evosax algorithm name (`evosax.algorithms.algorithms`).
      population_size: N.
      num_dims: D (solutions are flat vectors [D]).
      **kwargs: forwarded to the builder (e.g. `lr`, `std` for "open_es", `std` for "hill_climbing").

    Raises:
      ValueError: unknown name, or non-positive sizes, or an odd population for OpenAI-ES.
    """
    if population_size < 1 or num_dims < 1:
        raise ValueError(
            f"population_size and num_dims must be >= 1, got {population_size}, {num_dims}."
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
        raise ValueError(f"OpenAI-ES uses antithetic pairs: population_size must be even, got {population_size}.")
    algorithm = builder(population_size, jnp.zeros(num_dims), **kwargs)
    return Strategy(name, algorithm, population_size, num_dims)
