"""A whole search run as one `lax.scan`: ask -> evaluate -> tell, for any ask/tell strategy.

`make_search(strategy, fitness_fn, num_generations)` returns a pure
`search(key, mean, params, task) -> (final_state, metrics)`; the caller jits and vmaps it, e.g.
`jax.jit(jax.vmap(search, in_axes=(0, None, None, None)))(seed_keys, mean, params, task)` runs seeds
in parallel and `in_axes=(None, None, None, 0)` runs a batch of tasks. Works for evosax strategies
(`lfx.es.strategies.Strategy`) and EvoLLM alike (anything with `init/ask/tell`).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp


def make_search(strategy, fitness_fn: Callable, num_generations: int):
    """Builds `search(key, mean, params, task)`.

    Args:
      strategy: has `init(key, mean, params)`, `ask(key, state, params) -> (population [N, D], state)`,
        `tell(key, population, fitness, state, params) -> (state, metrics)`; fitness maximised.
      fitness_fn: `(key, population [N, D], task) -> fitness [N]` or `(fitness [N], aux [N])`; when
        an aux (e.g. BBOB regret) is returned its per-generation minimum is logged as "min_aux".
      num_generations: scan length G.

    Returns:
      search(key, mean [D], params, task) -> (state, metrics) with metrics arrays of leading shape [G]:
      "best_fitness" (best so far), "gen_best_fitness", "gen_mean_fitness", "best_aux"/"gen_min_aux"
      when aux is returned, plus the strategy's own scalar metrics.
    """
    if num_generations < 1:
        raise ValueError(f"num_generations must be >= 1, got {num_generations}.")

    def search(key: jax.Array, mean: jax.Array, params: Any, task: Any):
        key_init, key_run = jax.random.split(key)
        state = strategy.init(key_init, mean, params)

        def generation(carry, key_gen):
            state, best_fit, best_aux = carry
            key_ask, key_eval, key_tell = jax.random.split(key_gen, 3)
            population, state = strategy.ask(key_ask, state, params)
            out = fitness_fn(key_eval, population, task)
            fitness, aux = out if isinstance(out, tuple) else (out, None)
            state, strat_metrics = strategy.tell(key_tell, population, fitness, state, params)
            best_fit = jnp.maximum(best_fit, jnp.max(fitness))
            metrics = {
                "best_fitness": best_fit,
                "gen_best_fitness": jnp.max(fitness),
                "gen_mean_fitness": jnp.mean(fitness),
            }
            if aux is not None:
                best_aux = jnp.minimum(best_aux, jnp.min(aux))
                metrics |= {"best_aux": best_aux, "gen_min_aux": jnp.min(aux)}
            metrics |= {k: v for k, v in strat_metrics.items() if jnp.ndim(v) == 0 and k not in metrics}
            return (state, best_fit, best_aux), metrics

        carry = (state, jnp.asarray(-jnp.inf), jnp.asarray(jnp.inf))
        (state, _, _), metrics = jax.lax.scan(
            generation, carry, jax.random.split(key_run, num_generations)
        )
        return state, metrics

    return search
