"""Redundant planar arm with 20 joints and a small rewarded target area.

After Paolo et al.'s redundant arm (STAX arXiv:2203.15474): 20 revolute joints of equal length
L = 0.5 / 20 on a base at (0.5, 0.5), joint angles q in [-pi, pi] (q = 0: stretched along +x).
Forward kinematics: phi_i = sum_{j<=i} q_j,  p_ee = base + L * sum_i (cos phi_i, sin phi_i).
Action: joint velocities a * max_joint_speed per step, a in [-1, 1]^20; observation q / pi.
After T = 100 steps the reward is (R - d) / R if the end effector is within R of the target, else 0.
Descriptor: final end-effector position, grid [0, 1]^2.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces

from lfx.envs.sparse.base import blob_image, goal_reward, make_with_overrides

NUM_JOINTS = 20


@flax.struct.dataclass
class EnvState(environment.EnvState):
    q: jax.Array  # [J]
    time: int


@flax.struct.dataclass
class EnvParams(environment.EnvParams):
    base: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([0.5, 0.5]))
    link_length: float = 0.5 / NUM_JOINTS
    max_joint_speed: float = 0.05
    goal_centres: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([[0.25, 0.75]]))
    goal_radii: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([0.05]))
    max_steps_in_episode: int = 100


def joint_positions(q: jax.Array, params: EnvParams) -> jax.Array:
    """[J + 1, 2] positions of the base, every joint and the end effector (last row)."""
    phi = jnp.cumsum(q)
    steps = params.link_length * jnp.stack([jnp.cos(phi), jnp.sin(phi)], -1)
    return jnp.concatenate([params.base[None], params.base + jnp.cumsum(steps, 0)], 0)


def end_effector(q: jax.Array, params: EnvParams) -> jax.Array:
    return joint_positions(q, params)[-1]


class RedundantArm(environment.Environment[EnvState, EnvParams]):
    descriptor_low = (0.0, 0.0)
    descriptor_high = (1.0, 1.0)
    num_reward_areas = 1

    def __init__(self, num_joints: int = NUM_JOINTS):
        super().__init__()
        self.num_joints = num_joints

    @property
    def default_params(self) -> EnvParams:
        return EnvParams(link_length=0.5 / self.num_joints)

    def step_env(self, key, state, action, params):
        a = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        q = jnp.clip(state.q + a * params.max_joint_speed, -jnp.pi, jnp.pi)
        time = state.time + 1
        state = EnvState(q=q, time=time)
        r, _ = goal_reward(end_effector(q, params), params.goal_centres, params.goal_radii)
        last = time >= params.max_steps_in_episode
        return self.get_obs(state, params), state, jnp.where(last, r, 0.0), jnp.array(False), {}

    def reset_env(self, key, params):
        state = EnvState(q=jnp.zeros(self.num_joints), time=0)
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None):
        return state.q / jnp.pi

    def is_terminated(self, state, params):
        return jnp.array(False)

    def descriptor(self, state, params):
        return end_effector(state.q, params)

    def reward_area(self, state, params):
        return goal_reward(end_effector(state.q, params), params.goal_centres, params.goal_radii)[1]

    def render(self, state, params, size):
        return blob_image(joint_positions(state.q, params), jnp.zeros(2), jnp.ones(2), size, width=1.0)

    @property
    def name(self) -> str:
        return "RedundantArm-sparse"

    @property
    def num_actions(self) -> int:
        return self.num_joints

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (self.num_joints,), jnp.float32)

    def observation_space(self, params):
        return spaces.Box(-1.0, 1.0, (self.num_joints,), jnp.float32)


def make(num_joints: int = NUM_JOINTS, **kwargs: Any):
    if num_joints <= 0:
        raise ValueError(f"num_joints must be positive, got {num_joints}.")
    return make_with_overrides(RedundantArm(num_joints), **kwargs)
