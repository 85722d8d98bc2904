"""A whole search run as one `lax.scan`: ask -> evaluate -> tell, for any ask/tell strategy.

Two entry points over the same generation step:

* `make_train(config, strategy, fitness_fn) -> SearchRecipe` (the recipe shape every lfx family
  shares): `init(key, hparams, params, task)`, `run(state, hparams, params, task, *,
  num_updates)`, `train(...)`, one update = one generation. The state carries the strategy state,
  the run's key, the generation counter and the best-so-far values, so `lfx.experiment.run_chunked`
  can checkpoint a long search and resume it exactly. `SearchHParams.init_mean` is traced.
* `make_search(strategy, fitness_fn, num_generations)`: the pure
  `search(key, mean [D], params, task) -> (final_state, metrics)` (a vector start, one call); the
  caller jits and vmaps it, e.g. `jax.jit(jax.vmap(search, in_axes=(0, None, None, 0)))` runs a
  batch of seeds x tasks.

Both work for evosax strategies (`lfx.es.strategies.Strategy`) and EvoLLM alike (anything with
`init/ask/tell`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Static settings of a search run: `num_generations` G (the scan length)."""

    num_generations: int

    def validate(self) -> None:
        if self.num_generations < 1:
            raise ValueError(f"num_generations must be >= 1, got {self.num_generations}.")


@struct.dataclass
class SearchHParams:
    """Traced floats of a search run: the start mean (every coordinate), a sweepable float."""

    init_mean: float = 0.0


@struct.dataclass
class SearchState:
    strategy_state: Any
    key: jax.Array  # the run's generation key; generation g uses split(key, G)[g]
    generation: jax.Array  # int32 [], generations done
    best_fitness: jax.Array  # [] best fitness so far (maximised)
    best_aux: jax.Array  # [] smallest aux (e.g. BBOB regret) so far; +inf without aux


class SearchRecipe(NamedTuple):
    config: SearchConfig
    num_updates: int
    init: Callable
    run: Callable
    train: Callable


def _start(strategy, key: jax.Array, mean: jax.Array, params: Any) -> SearchState:
    key_init, key_run = jax.random.split(key)
    return SearchState(
        strategy_state=strategy.init(key_init, mean, params), key=key_run,
        generation=jnp.zeros((), jnp.int32), best_fitness=jnp.asarray(-jnp.inf, jnp.float32),
        best_aux=jnp.asarray(jnp.inf, jnp.float32),
    )


def _generations(strategy, fitness_fn: Callable, num_generations: int):
    """`run(state, params, task, n) -> (state, metrics [n])`: n more generations."""

    def run(state: SearchState, params: Any, task: Any, n: int):
        def generation(state: SearchState, _):
            key_gen = jax.random.split(state.key, num_generations)[state.generation]
            key_ask, key_eval, key_tell = jax.random.split(key_gen, 3)
            population, s = strategy.ask(key_ask, state.strategy_state, params)
            out = fitness_fn(key_eval, population, task)
            fitness, aux = out if isinstance(out, tuple) else (out, None)
            s, strat_metrics = strategy.tell(key_tell, population, fitness, s, params)
            best_fit = jnp.maximum(state.best_fitness, jnp.max(fitness))
            metrics = {
                "best_fitness": best_fit,
                "gen_best_fitness": jnp.max(fitness),
                "gen_mean_fitness": jnp.mean(fitness),
            }
            best_aux = state.best_aux
            if aux is not None:
                best_aux = jnp.minimum(best_aux, jnp.min(aux))
                metrics |= {"best_aux": best_aux, "gen_min_aux": jnp.min(aux)}
            metrics |= {k: v for k, v in strat_metrics.items()
                        if jnp.ndim(v) == 0 and k not in metrics}
            new = SearchState(strategy_state=s, key=state.key, generation=state.generation + 1,
                              best_fitness=best_fit.astype(jnp.float32),
                              best_aux=best_aux.astype(jnp.float32))
            return new, metrics

        return jax.lax.scan(generation, state, None, length=n)

    return run


def make_train(config: SearchConfig, strategy, fitness_fn: Callable) -> SearchRecipe:
    """The search as a recipe: one update = one generation.

    Args:
      config: `SearchConfig(num_generations)`.
      strategy: has `init(key, mean, params)`, `ask(key, state, params) -> (population [N, D],
        state)`, `tell(key, population, fitness, state, params) -> (state, metrics)`; fitness
        maximised; `strategy.num_dims` is D.
      fitness_fn: `(key, population [N, D], task) -> fitness [N]` or `(fitness [N], aux [N])`.

    Returns:
      `SearchRecipe`: `init(key, hparams, params, task)` starts at `full(D, hparams.init_mean)`;
      `run(state, hparams, params, task, *, num_updates)` -> (state, metrics `[num_updates]`, the
      keys of `make_search`). Chunked runs equal one `train` call bitwise.
    """
    config.validate()
    generations = _generations(strategy, fitness_fn, config.num_generations)

    def init(key, hparams: SearchHParams, params, task):
        del task
        mean = jnp.full((strategy.num_dims,), hparams.init_mean, jnp.float32)
        return _start(strategy, key, mean, params)

    def run(state, hparams, params, task, *, num_updates):
        del hparams
        return generations(state, params, task, num_updates)

    def train(key, hparams, params, task):
        return run(init(key, hparams, params, task), hparams, params, task,
                   num_updates=config.num_generations)

    return SearchRecipe(config, config.num_generations, init, run, train)


def make_search(strategy, fitness_fn: Callable, num_generations: int):
    """Builds `search(key, mean, params, task)`.

    Args:
      strategy: has `init(key, mean, params)`, `ask(key, state, params) -> (population [N, D], state)`,
        `tell(key, population, fitness, state, params) -> (state, metrics)`; fitness maximised.
      fitness_fn: `(key, population [N, D], task) -> fitness [N]` or `(fitness [N], aux [N])`; when
        an aux (e.g. BBOB regret) is returned its per-generation minimum is logged as "min_aux".
      num_generations: scan length G.

    Returns:
      search(key, mean [D], params, task) -> (strategy state, metrics) with metrics arrays of
      leading shape [G]: "best_fitness" (best so far), "gen_best_fitness", "gen_mean_fitness",
      "best_aux"/"gen_min_aux" when aux is returned, plus the strategy's own scalar metrics.
    """
    SearchConfig(num_generations).validate()
    generations = _generations(strategy, fitness_fn, num_generations)

    def search(key: jax.Array, mean: jax.Array, params: Any, task: Any):
        state, metrics = generations(_start(strategy, key, mean, params), params, task,
                                     num_generations)
        return state.strategy_state, metrics

    return search
