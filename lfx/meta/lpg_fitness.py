"""ES fitness of LPG meta-parameters with LPG's antithetic task sampling (Oh et al. 2020,
arXiv:2007.08794; lifetimes drawn per pair for TA-LPG, Jackson et al. 2024, arXiv:2402.05828)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from lfx.meta.fitness import antithetic_pair_fitness
from lfx.meta.lpg_agent import make_lpg_train, masked_final_mean
from lfx.meta.lpg_network import LPGConfig


def make_lpg_fitness(
    config: LPGConfig,
    *,
    metric: str = "train/reward_rate",
    window_fraction: float = 0.2,
    lifetime_range: tuple[float, float] | None = None,
    antithetic_tasks: bool = True,
) -> Callable:
    """ES fitness of LPG meta-parameters with the paper's antithetic task sampling.

    Members i and P/2 + i (an antithetic ± pair in evosax's layout) train on the same task (level
    and, with `lifetime_range`, a lifetime drawn log-uniformly in [lo, hi] updates) and score 1/0 by
    which pair member ends with the higher `metric` (LPG's ES fitness). Different pairs get
    different tasks.

    Returns:
      fitness_fn(key, population) -> (fitness [P], info).
    """
    train = make_lpg_train(config)

    def fitness_fn(key, population):
        pop = jax.tree.leaves(population)[0].shape[0]
        half = pop // 2
        k_task, k_life, k_seed = jax.random.split(key, 3)
        task_keys = jax.random.split(k_task, half)
        seed_keys = jax.random.split(k_seed, half)
        if lifetime_range is None:
            lifetimes = jnp.full((half,), float(config.max_updates))
        else:
            lo, hi = jnp.log(lifetime_range[0]), jnp.log(lifetime_range[1])
            lifetimes = jnp.round(jnp.exp(jax.random.uniform(k_life, (half,), minval=lo, maxval=hi)))
        tile = lambda x: jnp.concatenate([x, x])  # noqa: E731
        _, metrics = jax.vmap(train)(
            tile(seed_keys), population, tile(lifetimes), tile(task_keys)
        )
        score = masked_final_mean(metrics[metric], metrics["train/active"], window_fraction)
        fit = antithetic_pair_fitness(score) if antithetic_tasks else score
        return fit, {"meta/score_mean": jnp.mean(score)}

    return fitness_fn
