"""Point-mass navigation with sparse reward.

A point in [0, 1]^2 starts at `start`; each step it moves by `max_speed * a`, a in [-1, 1]^2, and is
clipped to the square. Observation [x, y, t / T]. After T steps the reward is (R - d) / R inside a
goal area (d: distance to its centre), else 0. Descriptor: final position, grid [0, 1]^2.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces

from lfx.envs.sparse.base import (
    PlanarAgentInUnitSquare,
    goal_reward,
    make_with_overrides,
)


@flax.struct.dataclass
class EnvState(environment.EnvState):
    pos: jax.Array
    time: int


@flax.struct.dataclass
class EnvParams(environment.EnvParams):
    start: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([0.5, 0.5]))
    max_speed: float = 0.03
    goal_centres: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([[0.9, 0.9], [0.1, 0.9]]))
    goal_radii: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([0.05, 0.03]))
    max_steps_in_episode: int = 50


class PointMass(PlanarAgentInUnitSquare, environment.Environment[EnvState, EnvParams]):
    descriptor_low = (0.0, 0.0)
    descriptor_high = (1.0, 1.0)
    num_reward_areas = 2

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def step_env(self, key, state, action, params):
        a = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        pos = jnp.clip(state.pos + params.max_speed * a, 0.0, 1.0)
        time = state.time + 1
        last = time >= params.max_steps_in_episode
        r, _ = goal_reward(pos, params.goal_centres, params.goal_radii)
        state = EnvState(pos=pos, time=time)
        return self.get_obs(state, params), state, jnp.where(last, r, 0.0), jnp.array(False), {}

    def reset_env(self, key, params):
        state = EnvState(pos=jnp.asarray(params.start, jnp.float32), time=0)
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None):
        params = self.default_params if params is None else params
        return jnp.concatenate([state.pos, jnp.array([state.time / params.max_steps_in_episode])])

    @property
    def name(self) -> str:
        return "PointMass-sparse"

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (3,), jnp.float32)


def make(**kwargs: Any):
    return make_with_overrides(PointMass(), **kwargs)
