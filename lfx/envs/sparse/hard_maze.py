"""Hard maze: a two-wheeled robot with three range sensors and two bumpers among walls.

The deceptive maze of Lehman & Stanley ("Abandoning Objectives", 2011), in the [0, 1]^2 layout that
Kheperax (Grillotti & Cully, arXiv:2211.02904) uses: wall segments, start (0.15, 0.15) heading +y,
robot radius 0.015, lasers at -pi/4, 0, pi/4 of range 0.2, goal (0.15, 0.9) radius 0.05. This is
lfx's own JAX code (no kheperax dependency).

* Observation (5 inputs, as in Paolo et al.'s maze): three laser distances / range in [0, 1] (1 = no
  wall within range) and two bumpers in {-1, 1} (a wall within 2 radii on the left / right front).
* Action a in [-1, 1]^2 (left, right wheel): v = max_speed (a_l + a_r) / 2,
  omega = max_speed (a_r - a_l) / (2 radius); heading += omega, position += v (cos, sin)(heading).
* Walls block: a move that would bring the robot's centre within `radius` of a wall is cancelled
  (the position stays, the heading turns).
* Reward at the last step (R - d) / R inside the goal, else 0. Descriptor: final (x, y), grid [0, 1]^2.
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
    point_segment_distance,
    ray_distance,
)

# Segment end points (x0, y0, x1, y1): the outer square, then the Kheperax "standard" maze walls.
HARD_MAZE_WALLS = (
    (0.0, 0.0, 1.0, 0.0),
    (1.0, 0.0, 1.0, 1.0),
    (1.0, 1.0, 0.0, 1.0),
    (0.0, 1.0, 0.0, 0.0),
    (0.25, 0.25, 0.25, 0.75),
    (0.14, 0.45, 0.0, 0.65),
    (0.25, 0.75, 0.0, 0.8),
    (0.25, 0.75, 0.66, 0.875),
    (0.355, 0.0, 0.525, 0.185),
    (0.25, 0.5, 0.75, 0.215),
    (1.0, 0.25, 0.435, 0.55),
)


@flax.struct.dataclass
class EnvState(environment.EnvState):
    pos: jax.Array  # [2]
    heading: jax.Array  # []
    time: int


@flax.struct.dataclass
class EnvParams(environment.EnvParams):
    walls: jax.Array = flax.struct.field(default_factory=lambda: jnp.array(HARD_MAZE_WALLS, jnp.float32))
    start: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([0.15, 0.15]))
    start_heading: float = jnp.pi / 2
    radius: float = 0.015
    laser_range: float = 0.2
    laser_angles: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([-jnp.pi / 4, 0.0, jnp.pi / 4]))
    max_speed: float = 0.002
    goal_centres: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([[0.15, 0.9]]))
    goal_radii: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([0.05]))
    max_steps_in_episode: int = 2000


def collides(pos: jax.Array, params: EnvParams) -> jax.Array:
    a, b = params.walls[:, :2], params.walls[:, 2:]
    return jnp.min(point_segment_distance(pos, a, b)) < params.radius


def sense(pos: jax.Array, heading: jax.Array, params: EnvParams) -> jax.Array:
    """[5]: three normalised laser distances and the left / right bumpers."""
    a, b = params.walls[:, :2], params.walls[:, 2:]
    lasers = jax.vmap(lambda ang: ray_distance(pos, heading + ang, a, b, params.laser_range))(params.laser_angles)
    bump = jax.vmap(lambda ang: ray_distance(pos, heading + ang, a, b, 2 * params.radius))(
        jnp.array([jnp.pi / 4, -jnp.pi / 4])
    )
    bumpers = jnp.where(bump < 2 * params.radius, 1.0, -1.0)
    return jnp.concatenate([lasers / params.laser_range, bumpers])


class HardMaze(PlanarAgentInUnitSquare, environment.Environment[EnvState, EnvParams]):
    descriptor_low = (0.0, 0.0)
    descriptor_high = (1.0, 1.0)
    num_reward_areas = 1

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def step_env(self, key, state, action, params):
        a = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        v = params.max_speed * (a[0] + a[1]) / 2
        omega = params.max_speed * (a[1] - a[0]) / (2 * params.radius)
        heading = state.heading + omega
        new_pos = state.pos + v * jnp.stack([jnp.cos(heading), jnp.sin(heading)])
        pos = jnp.where(collides(new_pos, params), state.pos, new_pos)
        time = state.time + 1
        state = EnvState(pos=pos, heading=heading, time=time)
        r, _ = goal_reward(pos, params.goal_centres, params.goal_radii)
        last = time >= params.max_steps_in_episode
        return self.get_obs(state, params), state, jnp.where(last, r, 0.0), jnp.array(False), {}

    def reset_env(self, key, params):
        state = EnvState(
            pos=jnp.asarray(params.start, jnp.float32), heading=jnp.asarray(params.start_heading, jnp.float32), time=0
        )
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None):
        params = self.default_params if params is None else params
        return sense(state.pos, state.heading, params)

    @property
    def name(self) -> str:
        return "HardMaze-sparse"

    def observation_space(self, params):
        return spaces.Box(-1.0, 1.0, (5,), jnp.float32)


def make(**kwargs: Any):
    return make_with_overrides(HardMaze(), **kwargs)
