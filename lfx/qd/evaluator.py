"""Population evaluator: every policy of a generation rolled out in one vmapped call.

For an environment of lfx.envs.sparse (fixed-length episodes, sparse reward), one rollout of a
flat-genome policy gives

    return      sum_t r_t (over the steps before the episode ended)
    descriptor  [B] ground-truth behaviour descriptor of the final state (env.descriptor)
    reward_area []  index of the reward area the episode ended in, -1 if none (env.reward_area)
    image       [S, S] top-down image of the final state (env.render), TAXONS' observation

`make_population_evaluator(...)(key, genomes [N, D])` vmaps the rollout over N. The env is stepped
with `step_env` (no auto-reset) and the state is frozen once the episode ends, so the final state is
the one described.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class Evaluation(NamedTuple):
    fitness: jax.Array  # [N] episode return
    descriptor: jax.Array  # [N, B]
    reward_area: jax.Array  # [N] int32
    image: jax.Array  # [N, S, S] (or [N, 0, 0] when not rendered)


def make_rollout(env: Any, env_params: Any, policy_apply: Callable, *, image_size: int = 0,
                 num_steps: int | None = None):
    """Returns rollout(key, genome [D]) -> Evaluation of one episode (no batch axis)."""
    steps = int(num_steps if num_steps is not None else env_params.max_steps_in_episode)
    if steps <= 0:
        raise ValueError(f"num_steps must be positive, got {steps}.")

    def rollout(key, genome):
        k_reset, k_steps = jax.random.split(key)
        obs, state = env.reset_env(k_reset, env_params)

        def body(carry, k):
            obs, state, ret, done = carry
            action = policy_apply(genome, obs)
            obs2, state2, r, term, _ = env.step_env(k, state, action, env_params)
            trunc = env.is_truncated(state2, env_params)
            keep = lambda old, new: jnp.where(done, old, new)
            state_n = jax.tree.map(keep, state, state2)
            obs_n = keep(obs, obs2)
            ret = ret + jnp.where(done, 0.0, r)
            done = done | term | trunc
            return (obs_n, state_n, ret, done), None

        init = (obs, state, jnp.zeros(()), jnp.zeros((), bool))
        (obs, state, ret, _), _ = jax.lax.scan(body, init, jax.random.split(k_steps, steps))
        img = env.render(state, env_params, image_size) if image_size else jnp.zeros((0, 0))
        return Evaluation(
            fitness=ret,
            descriptor=env.descriptor(state, env_params),
            reward_area=env.reward_area(state, env_params),
            image=img,
        )

    return rollout


def make_population_evaluator(env: Any, env_params: Any, policy_apply: Callable, *,
                              image_size: int = 0, num_steps: int | None = None):
    """Returns evaluate(key, genomes [N, D]) -> Evaluation with a leading N axis (one vmapped call)."""
    rollout = make_rollout(env, env_params, policy_apply, image_size=image_size, num_steps=num_steps)

    def evaluate(key, genomes):
        keys = jax.random.split(key, genomes.shape[0])
        return jax.vmap(rollout)(keys, genomes)

    return evaluate
