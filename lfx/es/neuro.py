"""Neuroevolution: fitness of a flat parameter vector = episode return of an MLP policy on an lfx env.

The policy is a tanh MLP obs -> hidden -> action: argmax over logits for discrete actions, tanh
scaled to the action bounds for continuous ones. The parameter vector [D] is unflattened with
`jax.flatten_util`; `fitness(key, population [N, D], task=None) -> returns [N]` (maximised) averages
`num_episodes` episodes of at most `max_steps` steps, counting rewards up to the first termination or
truncation (gymnax auto-resets; later steps are masked).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import flatten_util

from lfx import envs


def _init_mlp(key, sizes):
    layers = []
    for k, (n_in, n_out) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        w = jax.random.normal(k, (n_in, n_out)) / jnp.sqrt(n_in)
        layers.append({"w": w, "b": jnp.zeros(n_out)})
    return layers


def _apply_mlp(layers, x):
    for layer in layers[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]


def make_policy_fitness(
    env_name: str, *, hidden: tuple[int, ...] = (16,), num_episodes: int = 1, max_steps: int | None = None
):
    """Builds a neuroevolution problem on `lfx.envs.make(env_name)`.

    Returns:
      (fitness, init_solution, unravel): fitness(key, population [N, D], task) -> returns [N];
      init_solution [D] (a scaled-normal MLP init, key 0); unravel(flat [D]) -> MLP params.
    """
    env, env_params = envs.make(env_name)
    obs_shape = env.observation_space(env_params).shape
    obs_dim = int(jnp.prod(jnp.array(obs_shape)))
    space = env.action_space(env_params)
    discrete = hasattr(space, "n")
    act_dim = int(space.n) if discrete else int(jnp.prod(jnp.array(space.shape)))
    if max_steps is None:
        max_steps = int(env_params.max_steps_in_episode)
    if num_episodes < 1 or max_steps < 1:
        raise ValueError(f"num_episodes and max_steps must be >= 1, got {num_episodes}, {max_steps}.")
    init_params = _init_mlp(jax.random.key(0), (obs_dim, *hidden, act_dim))
    init_solution, unravel = flatten_util.ravel_pytree(init_params)

    def act(layers, obs):
        out = _apply_mlp(layers, obs.reshape(-1).astype(jnp.float32))
        if discrete:
            return jnp.argmax(out)
        low, high = space.low, space.high
        return low + (jnp.tanh(out) + 1.0) * 0.5 * (high - low)

    def episode(key, layers):
        key_reset, key_steps = jax.random.split(key)
        obs, state = env.reset(key_reset, env_params)

        def step(carry, key_step):
            obs, state, ret, alive = carry
            obs, state, reward, terminated, truncated, _ = env.step(
                key_step, state, act(layers, obs), env_params
            )
            ret = ret + alive * reward
            alive = alive * (1.0 - jnp.logical_or(terminated, truncated).astype(jnp.float32))
            return (obs, state, ret, alive), None

        (_, _, ret, _), _ = jax.lax.scan(
            step, (obs, state, 0.0, 1.0), jax.random.split(key_steps, max_steps)
        )
        return ret

    def member_fitness(key, flat):
        layers = unravel(flat)
        return jnp.mean(jax.vmap(episode, in_axes=(0, None))(jax.random.split(key, num_episodes), layers))

    def fitness(key, population, task=None):
        keys = jax.random.split(key, population.shape[0])
        return jax.vmap(member_fitness)(keys, population)

    return fitness, init_solution, unravel
