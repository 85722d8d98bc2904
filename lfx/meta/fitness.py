"""ES fitness of a learned objective: train fresh agents for whole lifetimes, score their returns.

    F(φ) = 1/|T| Σ_{τ ∈ T} (mean_seeds[ R̄_τ(φ) ] − R_τ^low) / (R_τ^PPO − R_τ^low),

R̄ the mean "train/episode_return" over the final `window_fraction` of the lifetime, tasks τ
environments × lifetimes, R^PPO a per-environment normaliser (a PPO return table) and R^low a floor
(a random policy's return; 0 by default, e.g. −500 for Acrobot-v1 whose returns are negative), so
environments with different return scales and signs weigh alike (Lu et al. 2022, arXiv:2210.05639; Jackson et al. 2024,
arXiv:2402.05828).

A task is any `train(key, hparams, objective_params) -> (state, metrics)` (the PPO recipe's
`make_train(cfg, policy_objective).train`, or `lfx.meta.bandit.make_train`). The population axis is a
`jax.vmap` over objective parameters; seeds are a second vmap. With common random numbers every
member sees the same seeds, so an antithetic pair differs only by its perturbation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

# PPO returns used to normalise fitness (FACTS.md): 1e7-step MinAtar PPO (learn-rl-algorithms) and
# the CartPole maximum. Small-budget runs should pass their own table measured at their budget.
PPO_RETURN_TABLE: dict[str, float] = {
    "Asterix-MinAtar": 15.0,
    "Freeway-MinAtar": 61.8,
    "Breakout-MinAtar": 50.1,
    "SpaceInvaders-MinAtar": 167.1,
    "CartPole-v1": 500.0,
}


@dataclasses.dataclass(frozen=True)
class Task:
    """One meta-training task: a name, a lifetime trainer and its return normaliser."""

    name: str
    train: Callable
    normaliser: float = 1.0
    floor: float = 0.0

    def __post_init__(self):
        if not self.normaliser > self.floor:
            raise ValueError(
                f"Task {self.name}: the return normaliser ({self.normaliser}) must exceed the floor "
                f"({self.floor}); for negative-return environments set the floor to a random policy's "
                "return (e.g. -500 for Acrobot-v1) and the normaliser to a PPO return.")


def final_return(episode_returns: jax.Array, window_fraction: float) -> jax.Array:
    """Mean of the last ceil(window_fraction · N) entries along the last axis. [..., N] -> [...]."""
    n = episode_returns.shape[-1]
    w = max(1, int(round(window_fraction * n)))
    return jnp.mean(episode_returns[..., n - w :], axis=-1)


def antithetic_pair_fitness(scores: jax.Array) -> jax.Array:
    """LPG's antithetic task sampling fitness: each ± pair scores 1 for the winner, 0 for the loser.

    Members i and P/2 + i are a pair (evosax's antithetic layout) trained on the same task.

    Args:
      scores: [P] returns.

    Returns:
      [P] in {0, 0.5, 1} (0.5 for ties).
    """
    half = scores.shape[0] // 2
    plus, minus = scores[:half], scores[half:]
    win = jnp.where(plus > minus, 1.0, jnp.where(plus < minus, 0.0, 0.5))
    return jnp.concatenate([win, 1.0 - win])


def make_fitness(
    tasks: Sequence[Task],
    hparams: Any = None,
    *,
    num_seeds: int = 1,
    common_random_numbers: bool = True,
    window_fraction: float = 0.1,
    pairwise: bool = False,
) -> Callable[[jax.Array, Any], tuple[jax.Array, dict[str, jax.Array]]]:
    """Builds `fitness_fn(key, population) -> (fitness [P], info)` (maximised).

    Args:
      tasks: environments × lifetimes to average over.
      hparams: traced agent hyperparameters passed to every `train`.
      num_seeds: agents per member per task.
      common_random_numbers: all members share the seeds of a generation.
      window_fraction: fraction of the final updates whose returns are averaged.
      pairwise: score antithetic pairs 1/0 by which wins (LPG's antithetic task sampling),
        averaged over tasks.

    Returns:
      fitness_fn; info holds "fitness/<task>" (mean normalised return) and "meta/return_<task>".
    """
    if not tasks:
        raise ValueError("make_fitness needs at least one Task.")
    if num_seeds < 1:
        raise ValueError(f"num_seeds must be >= 1, got {num_seeds}.")

    def fitness_fn(key, population):
        pop_size = jax.tree.leaves(population)[0].shape[0]
        total = 0.0
        info = {}
        for i, task in enumerate(tasks):
            k = jax.random.fold_in(key, i)
            over_pop = jax.vmap(task.train, in_axes=(0 if not common_random_numbers else None, None, 0))
            over_seeds = jax.vmap(over_pop, in_axes=(0, None, None))
            if common_random_numbers:
                keys = jax.random.split(k, num_seeds)  # [S]
            else:
                keys = jax.random.split(k, (num_seeds, pop_size))  # [S, P]
            _, metrics = over_seeds(keys, hparams, population)
            ret = final_return(metrics["train/episode_return"], window_fraction)  # [S, P]
            ret = jnp.mean(ret, axis=0)
            score = (ret - task.floor) / (task.normaliser - task.floor)
            info[f"fitness/{task.name}"] = jnp.mean(score)
            info[f"meta/return_{task.name}"] = jnp.mean(ret)
            total = total + (antithetic_pair_fitness(score) if pairwise else score)
        return total / len(tasks), info

    return fitness_fn
