"""Scripted behaviour policies for gymnax Pendulum-v1: cheap, deterministic data sources (tests, small studies).

An energy-pumping swing-up with a PD balance (`pendulum_controller`, mean return about -155 over 50
episodes, SAC's level), its noisy versions (behaviour policies of "medium" quality), a mixture with
uniform random actions, and the uniform random policy. Each `act(obs, key) -> (stored action in
[-1, 1]^1, env action in [-2, 2])`, the signature `lfx.offline.generate.rollouts` takes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lfx import envs
from lfx.offline import generate


def pendulum_controller(obs: jax.Array) -> jax.Array:
    """Energy-pumping swing-up then PD balance for gymnax Pendulum-v1 (g = 10, m = l = 1, |u| <= 2), as
    an action in [-1, 1]: mean return about -155 over 50 episodes (the level SAC reaches)."""
    c, s, w = obs[0], obs[1], obs[2]
    energy = 0.5 * w**2 + 10.0 * c  # 10 at rest upright
    pump = jnp.clip(2.0 * w * (10.0 - energy), -2.0, 2.0)
    balance = jnp.clip(-(10.0 * jnp.arctan2(s, c) + 2.0 * w), -2.0, 2.0)
    return (jnp.where(c > 0.85, balance, pump) / 2.0)[None]


def noisy_controller(noise: float):
    """`act(obs, key) -> (stored action in [-1, 1], env action)`: the controller plus Gaussian noise."""

    def act(obs, key):
        a = jnp.clip(pendulum_controller(obs) + noise * jax.random.normal(key, (1,)), -1.0, 1.0)
        return a, 2.0 * a

    return act


def mixed_controller(weight, noise: float = 0.3):
    """With probability `weight` (traced) the noisy controller's action, else a uniform random one."""

    def act(obs, key):
        k_mix, k_ctrl, k_rand = jax.random.split(key, 3)
        a = jnp.where(jax.random.uniform(k_mix) < weight, noisy_controller(noise)(obs, k_ctrl)[0],
                      uniform_random(obs, k_rand)[0])
        return a, 2.0 * a

    return act


def uniform_random(obs, key):
    a = jax.random.uniform(key, (1,), minval=-1.0, maxval=1.0)
    return a, 2.0 * a


def pendulum_rollouts(key, act, *, num_envs=8, num_steps=400):
    """`lfx.offline.generate.rollouts` of `act` on Pendulum-v1: a Dataset of num_envs * num_steps rows."""
    env, params = envs.make("Pendulum-v1")
    return generate.rollouts(key, act, env, params, num_envs=num_envs, num_steps=num_steps)
