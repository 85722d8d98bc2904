"""Curling: a two-link arm must push a ball so that it comes to rest in one of two goal areas.

Paolo et al.'s Curling task (SERENE arXiv:2102.03140), whose public code is a Box2D table
(`gym_billiard`, env `Curling-v0`). This is lfx's own JAX re-implementation with the same geometry,
control, damping, episode length, goals and reward; the solver is a simple impulse model, not Box2D.

* Table [-1.5, 1.5]^2 bounded by walls 0.1 thick (inner faces at +-1.45), so the ball's centre stays
  in [-1.3, 1.3]^2. No gravity (top view).
* Arm: base at (0, -1.5); link 0 from the base to the elbow (length 1.0); link 1 from 0.1 behind the
  elbow to 0.9 beyond it (Box2D's links overlap at the joint), so the tip is 1.9 from the base when
  straight. Links are capsules of half-width 0.05. Angles from +y, counter-clockwise; q0 in
  [-0.4 pi, 0.4 pi] (absolute), q1 in [-0.9 pi, 0.9 pi] (relative), starting straight up, q = (0, 0).
* Control: joint **velocity**, q' = clip(a, -1, 1) * 1 rad/s (a Box2D motor with a large torque
  tracks its speed within a step); joint limits stop the joint.
* Ball: radius 0.15, starts at rest at (-0.5, 0.2), to the left of the raised arm. Box2D linear
  damping c = 1.1: each step v <- v / (1 + c dt), so a ball launched at v0 slides about v0 / c.
* Contacts are frictionless impulses. Ball-link: with n the unit normal from the link to the ball and
  v_c the velocity of the link's closest point (rigid rotation about the joints), if the normal
  relative speed u = (v - v_c) . n < 0 then v <- v - (1 + e) u n, e = 0.9 (Box2D uses the larger of
  the two restitutions); the arm is kinematic (its motors hold their speed). Ball-wall: the normal
  component flips, v_n <- -e_w v_n, e_w = 0.95. As in Box2D, impacts slower than 1 m/s are
  inelastic (e = 0).
* Step order as in Box2D: damp, solve contacts at the current poses, integrate (dt = 1/60 s), push
  the ball out of any overlap.
* Episode: 500 steps (8.3 s). Goals (0.8, 0.8) radius 0.4 and (0.8, -0.8) radius 0.2, both on the
  side away from the ball; at the last step the reward is (R - d) / R inside a goal (d: ball's
  distance to its centre), else 0. Descriptor: the ball's final position, grid [-1.35, 1.35]^2.
  Observation [ball x, y, q0, q1, q0', q1'] as in the paper.

The earlier lfx version (ball at the arm's tip, joints 3 rad/s, constant friction, 100 steps, goal
reachable by a direct kick) let 1.2 % of random policies reach the large goal; see
docs/results/qd.md for the measured fraction of this one.
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
    q: jax.Array  # [2] joint angles (q1 relative to link 0)
    qd: jax.Array  # [2] joint speeds achieved in the last step
    time: int


@flax.struct.dataclass
class EnvParams(environment.EnvParams):
    dt: float = 1.0 / 60.0
    base: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([0.0, -1.5]))
    links: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([1.0, 1.0]))
    link_overlap: float = 0.1  # link 1 starts this far behind the elbow
    link_half_width: float = 0.05
    joint_limits: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([0.4 * jnp.pi, 0.9 * jnp.pi]))
    max_joint_speed: float = 1.0
    q_start: jax.Array = flax.struct.field(default_factory=lambda: jnp.zeros(2))
    ball_radius: float = 0.15
    ball_start: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([-0.5, 0.2]))
    linear_damping: float = 1.1
    restitution: float = 0.9
    wall_restitution: float = 0.95
    restitution_threshold: float = 1.0  # m/s; slower impacts are inelastic (Box2D's velocity threshold)
    contact_slop: float = 0.005
    half_size: float = 1.5
    wall_half_thickness: float = 0.05
    goal_centres: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([[0.8, 0.8], [0.8, -0.8]]))
    goal_radii: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([0.4, 0.2]))
    max_steps_in_episode: int = 500


def _dir(angle):
    return jnp.array([-jnp.sin(angle), jnp.cos(angle)])


def _cross(w, r):
    """z-axis angular speed w [] times planar vector r [2]: w x r."""
    return w * jnp.array([-r[1], r[0]])


def link_segments(q: jax.Array, params: EnvParams) -> tuple[jax.Array, jax.Array]:
    """End points (a [2, 2], b [2, 2]) of link 0 and link 1's centre lines for joint angles q [2]."""
    u0, u1 = _dir(q[0]), _dir(q[0] + q[1])
    elbow = params.base + params.links[0] * u0
    a = jnp.stack([params.base, elbow - params.link_overlap * u1])
    b = jnp.stack([elbow, elbow + (params.links[1] - params.link_overlap) * u1])
    return a, b


def tip_position(q: jax.Array, params: EnvParams) -> jax.Array:
    """End of link 1 [2]."""
    return link_segments(q, params)[1][1]


def point_velocity(p: jax.Array, link: int, q: jax.Array, qd: jax.Array, params: EnvParams) -> jax.Array:
    """Velocity [2] of the point p [2] fixed to `link` (0 or 1) when the joints turn at qd [2]."""
    elbow = params.base + params.links[0] * _dir(q[0])
    v0 = _cross(qd[0], p - params.base)
    v1 = _cross(qd[0], elbow - params.base) + _cross(qd[0] + qd[1], p - elbow)
    return jnp.where(link == 0, v0, v1)


def _closest(p, a, b):
    ab = b - a
    t = jnp.clip(jnp.dot(p - a, ab) / jnp.maximum(jnp.dot(ab, ab), 1e-12), 0.0, 1.0)
    return a + t * ab


def _bounce(u, e, threshold):
    """Restitution used for an approaching normal speed u < 0."""
    return jnp.where(-u > threshold, e, 0.0)


def collide_links(ball, vel, q, qd, params):
    """Velocity impulses of both links on the ball (links in order): vel [2]."""
    a, b = link_segments(q, params)
    reach = params.ball_radius + params.link_half_width + params.contact_slop
    for i in range(2):
        c = _closest(ball, a[i], b[i])
        diff = ball - c
        d = jnp.linalg.norm(diff)
        n = diff / jnp.maximum(d, 1e-9)
        u = jnp.dot(vel - point_velocity(c, i, q, qd, params), n)
        hit = (d < reach) & (u < 0.0)
        e = _bounce(u, params.restitution, params.restitution_threshold)
        vel = jnp.where(hit, vel - (1.0 + e) * u * n, vel)
    return vel


def separate_links(ball, q, params):
    """Pushes the ball out of any overlap with the links at pose q: ball [2]."""
    a, b = link_segments(q, params)
    contact = params.ball_radius + params.link_half_width
    for i in range(2):
        c = _closest(ball, a[i], b[i])
        diff = ball - c
        d = jnp.linalg.norm(diff)
        n = diff / jnp.maximum(d, 1e-9)
        ball = jnp.where(d < contact, c + contact * n, ball)
    return ball


def collide_walls(ball, vel, params):
    """Reflects the ball off the table's inner faces: (ball [2], vel [2])."""
    lim = params.half_size - params.wall_half_thickness - params.ball_radius
    out = (jnp.abs(ball) > lim) & (ball * vel > 0)
    e = _bounce(-jnp.abs(vel), params.wall_restitution, params.restitution_threshold)
    vel = jnp.where(out, -e * vel, vel)
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
        q = jnp.clip(state.q + a * params.max_joint_speed * params.dt, -params.joint_limits, params.joint_limits)
        qd = (q - state.q) / params.dt  # joint limits stop the joint
        vel = state.ball_vel / (1.0 + params.linear_damping * params.dt)
        vel = collide_links(state.ball, vel, state.q, qd, params)
        ball = state.ball + vel * params.dt
        ball = separate_links(ball, q, params)
        ball, vel = collide_walls(ball, vel, params)
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
        return jnp.concatenate([state.ball, state.q, state.qd])

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
