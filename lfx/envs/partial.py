"""Partial observability by masking: the agent sees only some dimensions of the observation.

    env, params = envs.make("CartPole-v1")
    env = MaskObservation(env, keep=(0, 2), params=params)   # CartPole without velocities: (x, theta)

`MaskObservation` returns `obs[keep]` from `reset` and `step` (and from `info["final_observation"]`),
so an observation of shape [D] becomes [len(keep)]; the dynamics, rewards and episode ends are the
wrapped env's. Dropping CartPole's velocities (x_dot, theta_dot) is the standard "CartPole without
velocities" memory task (e.g. Morad et al. 2023, "POPGym: Benchmarking Partially Observable
Reinforcement Learning", arXiv:2303.01859, `StatelessCartPole`): the velocities must be inferred
from successive positions, which a recurrent policy can do and a feed-forward one cannot.

`check_keep(keep, obs_dim)` is the validation (used by configs before anything is compiled): `keep`
is a non-empty tuple of distinct integer indices in [0, obs_dim), kept in the order given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from lfx.envs.wrappers import Wrapper


def check_keep(keep: Sequence[int], obs_dim: int) -> tuple[int, ...]:
    """Returns `keep` as a tuple of ints; raises ValueError, saying what to change, if it is bad."""
    if isinstance(keep, (str, bytes)) or not isinstance(keep, Sequence):
        raise ValueError(f"keep must be a tuple of observation indices such as (0, 2), got {keep!r}.")
    if len(keep) == 0:
        raise ValueError("keep is empty: the agent would see nothing; list at least one observation index.")
    if any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in keep):
        raise ValueError(f"keep must hold integer indices, got {tuple(keep)!r}.")
    keep = tuple(int(i) for i in keep)
    bad = [i for i in keep if not 0 <= i < obs_dim]
    if bad:
        raise ValueError(f"keep={keep} has indices {bad} outside the observation's [0, {obs_dim}); "
                         f"use indices 0..{obs_dim - 1}.")
    if len(set(keep)) != len(keep):
        raise ValueError(f"keep={keep} repeats an index; list each kept dimension once.")
    return keep


class MaskObservation(Wrapper):
    """Keeps the observation dimensions `keep` (a vector observation [D] -> [len(keep)]).

    Args:
      env: a gymnax-1.0-style env with vector observations.
      keep: the indices to keep, in order (validated by `check_keep`).
      params: the env params used to read the observation's shape (default: `env.default_params`).
    """

    def __init__(self, env: Any, keep: Sequence[int], params: Any = None):
        super().__init__(env)
        space = env.observation_space(params if params is not None else env.default_params)
        if len(space.shape) != 1:
            raise ValueError(f"MaskObservation needs a vector observation, got shape {space.shape}; "
                             f"flatten it first (wrappers.FlattenObservation).")
        self.keep = check_keep(keep, space.shape[0])
        self._index = np.asarray(self.keep, np.int32)

    def _mask(self, obs: jax.Array) -> jax.Array:
        return jnp.take(obs, self._index, axis=-1)

    def observation_space(self, params):
        space = self._env.observation_space(params)
        low = jnp.broadcast_to(jnp.asarray(space.low), space.shape)[self._index]
        high = jnp.broadcast_to(jnp.asarray(space.high), space.shape)[self._index]
        return spaces.Box(low, high, (len(self.keep),), space.dtype)

    def reset(self, key, params=None):
        obs, state = self._env.reset(key, params)
        return self._mask(obs), state

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        if "final_observation" in info:
            info = {**info, "final_observation": self._mask(info["final_observation"])}
        return self._mask(obs), state, reward, terminated, truncated, info
