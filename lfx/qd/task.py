"""A QD task: a registered sparse-reward env, an MLP policy genome, and the run-wide tracker.

`Tracker` is what every algorithm shares, so their curves are comparable: the exact evaluation
counter, a 50 x 50 visit grid over the ground-truth descriptor space (every evaluated policy
counts), the reward areas found, and the best reward / genome so far.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp

from lfx.envs import make
from lfx.qd import budget, metrics
from lfx.qd.evaluator import Evaluation, make_population_evaluator
from lfx.qd.policy import MLPPolicy


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    env: Any
    env_params: Any
    policy: MLPPolicy
    evaluate: Callable[[jax.Array, jax.Array], Evaluation]  # (key, genomes [N, D]) -> Evaluation
    descriptor_low: tuple[float, float]
    descriptor_high: tuple[float, float]
    num_reward_areas: int
    image_size: int

    @property
    def genome_dim(self) -> int:
        return self.policy.num_params

    def init_genomes(self, key: jax.Array, n: int) -> jax.Array:
        return self.policy.init(key, n)


def make_task(env_name: str, *, hidden: tuple[int, ...] = (16,), image_size: int = 32,
              **env_kwargs: Any) -> Task:
    """Builds a Task for an env registered in lfx.envs with descriptor / reward_area / render methods."""
    env, params = make(env_name, **env_kwargs)
    for attr in ("descriptor", "reward_area", "render", "descriptor_low"):
        if not hasattr(env, attr):
            raise ValueError(f"{env_name} is not a sparse-reward QD env (no `{attr}`); use one of "
                             f"lfx.envs.sparse.")
    obs, _ = env.reset_env(jax.random.key(0), params)
    policy = MLPPolicy(int(obs.shape[0]), int(env.num_actions), tuple(hidden))
    evaluate = make_population_evaluator(env, params, policy.apply, image_size=image_size)
    return Task(
        name=env_name,
        env=env,
        env_params=params,
        policy=policy,
        evaluate=evaluate,
        descriptor_low=tuple(env.descriptor_low),
        descriptor_high=tuple(env.descriptor_high),
        num_reward_areas=int(env.num_reward_areas),
        image_size=image_size,
    )


@flax.struct.dataclass
class Tracker:
    counter: budget.EvalCounter
    grid: metrics.Grid
    found: jax.Array  # [A] bool
    best_reward: jax.Array  # []
    best_genome: jax.Array  # [D]


def init_tracker(task: Task, total_budget: int, bins: int = 50) -> Tracker:
    return Tracker(
        counter=budget.init_counter(total_budget),
        grid=metrics.init_grid(task.descriptor_low, task.descriptor_high, bins),
        found=jnp.zeros((task.num_reward_areas,), bool),
        best_reward=jnp.asarray(-jnp.inf, jnp.float32),  # not weak-typed: a stable scan carry
        best_genome=jnp.zeros((task.genome_dim,)),
    )


def evaluate_granted(
    key: jax.Array, task: Task, tracker: Tracker, genomes: jax.Array, limit: Any = None
) -> tuple[Tracker, Evaluation, jax.Array]:
    """Asks the budget for len(genomes) evaluations, rolls all out in one call, records the granted.

    Returns (tracker, evaluation, granted [N] bool); results of non-granted rows must not be used.
    """
    counter, granted = budget.request(tracker.counter, genomes.shape[0], limit=limit)
    ev = task.evaluate(key, genomes)
    fit = jnp.where(granted, ev.fitness, -jnp.inf)
    i = jnp.argmax(fit)
    better = fit[i] > tracker.best_reward
    tracker = tracker.replace(
        counter=counter,
        grid=metrics.add(tracker.grid, ev.descriptor, granted),
        found=metrics.areas_found(tracker.found, ev.reward_area, granted),
        best_reward=jnp.where(better, fit[i], tracker.best_reward),
        best_genome=jnp.where(better, genomes[i], tracker.best_genome),
    )
    return tracker, ev, granted


def summary(tracker: Tracker) -> dict[str, float]:
    return {
        "evaluations": int(tracker.counter.used),
        "coverage": float(metrics.coverage(tracker.grid)),
        "uniformity": float(metrics.uniformity(tracker.grid)),
        "reward_areas": int(tracker.found.sum()),
        "best_reward": float(jnp.maximum(tracker.best_reward, 0.0)),
    }
