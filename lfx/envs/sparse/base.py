"""Shared pieces of the sparse-reward environments: goal areas, images, segments."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from gymnax.environments import spaces


def goal_reward(pos: jax.Array, centres: jax.Array, radii: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reward (R - d) / R inside the first goal area containing `pos`, else 0 (Paolo et al.).

    Args:
      pos: [2] final position.
      centres: [A, 2] goal centres.
      radii: [A] goal radii.

    Returns:
      (reward [], area [] int32, -1 outside every goal).
    """
    d = jnp.linalg.norm(pos[None, :] - centres, axis=-1)
    inside = d <= radii
    first = jnp.argmax(inside)
    any_in = inside.any()
    reward = jnp.where(any_in, (radii[first] - d[first]) / radii[first], 0.0)
    return reward, jnp.where(any_in, first, -1).astype(jnp.int32)


def blob_image(points: jax.Array, low: jax.Array, high: jax.Array, size: int, width: float = 1.5) -> jax.Array:
    """[size, size] image in [0, 1]: max over points [P, 2] of Gaussian blobs (width in pixels).

    Row index follows the first coordinate, column the second.
    """
    centres = (jnp.arange(size) + 0.5) / size
    u = (points - low) / (high - low)  # [P, 2] in [0, 1]
    s = width / size
    gx = jnp.exp(-0.5 * ((centres[None, :] - u[:, 0:1]) / s) ** 2)  # [P, size]
    gy = jnp.exp(-0.5 * ((centres[None, :] - u[:, 1:2]) / s) ** 2)
    return jnp.max(gx[:, :, None] * gy[:, None, :], axis=0)


def point_segment_distance(p: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """Distance from point p [2] to each segment a[i]-b[i] ([S, 2] each): [S]."""
    ab = b - a
    t = jnp.clip(jnp.sum((p - a) * ab, -1) / jnp.maximum(jnp.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
    closest = a + t[:, None] * ab
    return jnp.linalg.norm(p - closest, axis=-1)


def ray_distance(p: jax.Array, angle: jax.Array, a: jax.Array, b: jax.Array, max_range: float) -> jax.Array:
    """Distance along the ray from p [2] at `angle` to the nearest segment ([S, 2] ends), capped at max_range."""
    d = jnp.stack([jnp.cos(angle), jnp.sin(angle)])
    e = b - a  # [S, 2]
    cross = lambda u, v: u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
    denom = cross(d[None, :], e)  # [S]
    ap = a - p
    safe = jnp.where(jnp.abs(denom) < 1e-12, 1.0, denom)
    t = cross(ap, e) / safe  # along the ray
    s = cross(ap, d[None, :]) / safe  # along the segment
    hit = (jnp.abs(denom) >= 1e-12) & (t >= 0.0) & (s >= 0.0) & (s <= 1.0)
    return jnp.minimum(jnp.min(jnp.where(hit, t, jnp.inf)), max_range)


def make_with_overrides(env, **kwargs):
    """(env, env.default_params with `kwargs` fields replaced); ValueError naming unknown fields."""
    import dataclasses

    params = env.default_params
    fields = {f.name for f in dataclasses.fields(params)}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise ValueError(f"{env.name} has no parameter(s) {unknown}; known: {sorted(fields)}.")
    return env, params.replace(**kwargs)


class PlanarAgentInUnitSquare:
    """Shared methods of the 2-D agents in [0, 1]^2 (hard maze, point mass).

    The agent's state has `pos` [2]; actions are 2-D in [-1, 1]; episodes end only by the time
    limit; the behaviour descriptor is the final position; goals are discs
    (`params.goal_centres`, `params.goal_radii`).
    """

    def is_terminated(self, state, params):
        return jnp.array(False)

    def descriptor(self, state, params):
        return state.pos

    def reward_area(self, state, params):
        return goal_reward(state.pos, params.goal_centres, params.goal_radii)[1]

    def render(self, state, params, size):
        return blob_image(state.pos[None], jnp.zeros(2), jnp.ones(2), size)

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (2,), jnp.float32)
