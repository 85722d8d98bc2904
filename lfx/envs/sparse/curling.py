"""Curling: a two-joint arm pushes a ball that must come to rest in one of two goal areas.

After Paolo et al.'s Curling task (SERENE arXiv:2102.03140; their gym_billiard code uses Box2D):
this is lfx's own simplified kinematic JAX version with the same goals and reward.

* Table [-1.5, 1.5]^2; arm base at (0, -1.5), links (0.8, 0.5), joint angles q0 in [-pi/2, pi/2]
  (0 = pointing up), q1 in [-pi, pi], starting at (0, 1.5) with the ball
  at rest at (0, -0.2); action = joint velocities a * max_joint_speed, a in [-1, 1]^2.
* The arm tip is a disc of radius 0.05 of infinite mass. On contact (overlap, approaching) the ball
  of radius 0.1 gets the impulse v_ball += (1 + e) * max(0, (v_tip - v_ball) . n) n (n: unit vector
  tip -> ball) and is moved out of the overlap.
* The ball slides with constant friction deceleration mu: |v| <- max(|v| - mu dt, 0) (so it stops),
  and bounces off the table's edges with restitution e_wall.
* Goals (0.8, 0.8) radius 0.4 and (0.8, -0.8) radius 0.2; at the last step the reward is
  (R - d) / R inside a goal (d: ball's distance to the centre), else 0. Descriptor: the ball's final
  position, grid [-1.35, 1.35]^2. Observation [ball x, y, q0, q1, q0', q1'].
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces

from lfx.envs.sparse.base import blob_image, goal_reward, make_with_overrides


@flax.struct.dataclass
class EnvState(environment.EnvState):
    ball: jax.Array  # [2]
    ball_vel: jax.Array  # [2]
    q: jax.Array  # [2]
    qd: jax.Array  # [2]
    time: int


@flax.struct.dataclass
class EnvParams(environment.EnvParams):
    dt: float = 0.05
    base: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([0.0, -1.5]))
    links: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([0.8, 0.5]))
    max_joint_speed: float = 3.0
    tip_radius: float = 0.05
    ball_radius: float = 0.1
    ball_start: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([0.0, -0.2]))
    q_start: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([0.0, 1.5]))
    friction: float = 2.5
    restitution: float = 0.8
    wall_restitution: float = 0.8
    half_size: float = 1.5
    goal_centres: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([[0.8, 0.8], [0.8, -0.8]]))
    goal_radii: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([0.4, 0.2]))
    max_steps_in_episode: int = 100


def tip_position(q: jax.Array, params: EnvParams) -> jax.Array:
    """Forward kinematics [2]; angles measured from the +y axis, counter-clockwise."""
    a0, a1 = q[0], q[0] + q[1]
    l0, l1 = params.links[0], params.links[1]
    return params.base + l0 * jnp.array([-jnp.sin(a0), jnp.cos(a0)]) + l1 * jnp.array([-jnp.sin(a1), jnp.cos(a1)])


def ball_step(ball, vel, params):
    """Friction and edge bounces for one step of the free ball: (ball [2], vel [2])."""
    speed = jnp.linalg.norm(vel)
    new_speed = jnp.maximum(speed - params.friction * params.dt, 0.0)
    vel = jnp.where(speed > 0, vel * (new_speed / jnp.where(speed > 0, speed, 1.0)), 0.0)
    ball = ball + vel * params.dt
    lim = params.half_size - params.ball_radius
    over = jnp.abs(ball) > lim
    ball = jnp.where(over, jnp.sign(ball) * (2 * lim - jnp.abs(ball)), ball)
    vel = jnp.where(over, -params.wall_restitution * vel, vel)
    return jnp.clip(ball, -lim, lim), vel


class Curling(environment.Environment[EnvState, EnvParams]):
    descriptor_low = (-1.35, -1.35)
    descriptor_high = (1.35, 1.35)
    num_reward_areas = 2

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def step_env(self, key, state, action, params):
        a = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        qd = a * params.max_joint_speed
        lo = jnp.array([-jnp.pi / 2, -jnp.pi])
        q = jnp.clip(state.q + qd * params.dt, lo, -lo)
        qd = (q - state.q) / params.dt  # joint limits stop the joint
        tip_old = tip_position(state.q, params)
        tip = tip_position(q, params)
        v_tip = (tip - tip_old) / params.dt
        ball, vel = ball_step(state.ball, state.ball_vel, params)
        diff = ball - tip
        dist = jnp.linalg.norm(diff)
        n = diff / jnp.maximum(dist, 1e-9)
        contact_d = params.ball_radius + params.tip_radius
        touching = dist < contact_d
        rel = jnp.maximum(jnp.dot(v_tip - vel, n), 0.0)
        vel = jnp.where(touching, vel + (1.0 + params.restitution) * rel * n, vel)
        ball = jnp.where(touching, tip + n * contact_d, ball)
        lim = params.half_size - params.ball_radius
        ball = jnp.clip(ball, -lim, lim)
        time = state.time + 1
        state = EnvState(ball=ball, ball_vel=vel, q=q, qd=qd, time=time)
        r, _ = goal_reward(ball, params.goal_centres, params.goal_radii)
        last = time >= params.max_steps_in_episode
        return self.get_obs(state, params), state, jnp.where(last, r, 0.0), jnp.array(False), {}

    def reset_env(self, key, params):
        state = EnvState(
            ball=jnp.asarray(params.ball_start, jnp.float32),
            ball_vel=jnp.zeros(2),
            q=jnp.asarray(params.q_start, jnp.float32),
            qd=jnp.zeros(2),
            time=0,
        )
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None):
        return jnp.concatenate([state.ball, state.q, state.qd / 3.0])

    def is_terminated(self, state, params):
        return jnp.array(False)

    def descriptor(self, state, params):
        return state.ball

    def reward_area(self, state, params):
        return goal_reward(state.ball, params.goal_centres, params.goal_radii)[1]

    def render(self, state, params, size):
        low = -params.half_size * jnp.ones(2)
        return blob_image(state.ball[None], low, -low, size)

    @property
    def name(self) -> str:
        return "Curling-sparse"

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (2,), jnp.float32)

    def observation_space(self, params):
        return spaces.Box(-jnp.inf, jnp.inf, (6,), jnp.float32)


def make(**kwargs: Any):
    return make_with_overrides(Curling(), **kwargs)
