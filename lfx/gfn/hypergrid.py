"""Hypergrid: walk from the origin of a `dim`-dimensional grid of side `height`, then exit.

Reward (Bengio et al. 2021, "Flow Network based Generative Models for Non-Iterative Diverse
Candidate Generation", arXiv:2106.04399), with u_i = |x_i / (H - 1) - 1/2|:

    R(x) = R0 + R1 * prod_i 1[0.25 < u_i] + R2 * prod_i 1[0.3 < u_i < 0.4].

The band inequalities are evaluated exactly in integers, e.g. 0.25 < u_i  <=>  (H - 1) < 2|2 x_i -
(H - 1)|. This is the limit of comparing floats with a small epsilon (as FACTS.md recommends): a
value exactly on a band edge is excluded on both sides of the grid, so the reward is symmetric under
x_i -> H - 1 - x_i for every height (plain float comparison breaks that symmetry, e.g. at H = 11).

Forward actions: `i` in [0, dim) increments coordinate i (allowed while x_i < H - 1); `dim` exits.
Backward actions: `i` decrements coordinate i (allowed while x_i > 0). Observation: K-hot, [dim * H].
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from lfx.gfn.base import GFNEnv, GFNState


@struct.dataclass
class HypergridParams:
    """Traced reward constants (a `vmap` over these is a sweep over reward landscapes)."""

    r0: float = 1e-3
    r1: float = 0.5
    r2: float = 2.0
    max_steps_in_episode: int = 1 << 30


class Hypergrid(GFNEnv):
    """Hypergrid of side `height` in `dim` dimensions (static shape settings)."""

    def __init__(self, dim: int = 2, height: int = 8):
        if dim < 1 or height < 2:
            raise ValueError(f"Hypergrid needs dim >= 1 and height >= 2; got dim={dim}, height={height}.")
        self.dim = dim
        self.height = height
        self.obj_size = dim
        self.num_actions = dim + 1
        self.num_backward_actions = dim
        self.max_steps = dim * (height - 1) + 1
        self.obs_size = dim * height

    @property
    def name(self) -> str:
        return f"Hypergrid-{self.dim}x{self.height}"

    @property
    def default_params(self) -> HypergridParams:
        return HypergridParams()

    def initial_obj(self) -> jax.Array:
        return jnp.zeros((self.dim,), jnp.int32)

    def forward_mask(self, state: GFNState, params: HypergridParams) -> jax.Array:
        return jnp.concatenate([state.obj < self.height - 1, jnp.ones((1,), bool)])

    def backward_mask(self, state: GFNState, params: HypergridParams) -> jax.Array:
        return state.obj > 0

    def apply_forward(self, state, action, params):
        obj = state.obj + jax.nn.one_hot(action, self.dim, dtype=jnp.int32)
        return state.replace(obj=obj, time=state.time + 1)

    def apply_backward(self, state, bwd_action, params):
        obj = state.obj - jax.nn.one_hot(bwd_action, self.dim, dtype=jnp.int32)
        return state.replace(obj=obj, time=state.time - 1)

    def backward_action(self, state, action, params):
        return action

    def forward_action(self, state, bwd_action, params):
        return bwd_action

    def log_reward(self, state: GFNState, params: HypergridParams) -> jax.Array:
        return jnp.log(hypergrid_reward(state.obj, self.height, params))

    def get_obs(self, state: GFNState, params=None, key=None) -> jax.Array:
        return jax.nn.one_hot(state.obj, self.height, dtype=jnp.float32).reshape(-1)

    def mode_objects(self) -> np.ndarray:
        """[M, dim] states of maximal reward (every coordinate inside the 0.3 < u < 0.4 band)."""
        h1 = self.height - 1
        a = np.abs(2 * np.arange(self.height) - h1)
        band = np.nonzero((3 * h1 < 5 * a) & (5 * a < 4 * h1))[0]
        return np.asarray(list(itertools.product(band, repeat=self.dim)), np.int32).reshape(-1, self.dim)

    def mode_hits(self, obj, params):
        return jnp.all(obj[..., None, :] == jnp.asarray(self.mode_objects()), axis=-1)

    def terminal_index(self, obj):
        return jnp.sum(obj * self.height ** jnp.arange(self.dim - 1, -1, -1), axis=-1)

    def terminal_objects(self) -> np.ndarray:
        grid = itertools.product(range(self.height), repeat=self.dim)
        return np.asarray(list(grid), np.int32).reshape(-1, self.dim)


def hypergrid_reward(x: jax.Array, height: int, params: HypergridParams) -> jax.Array:
    """R(x) for grid coordinates `x` ([..., dim] int) of a grid of side `height`; returns [...]."""
    h1 = height - 1
    a = jnp.abs(2 * x - h1)  # u_i = a_i / (2 (H - 1))
    outer = jnp.all(h1 < 2 * a, axis=-1)  # 0.25 < u
    band = jnp.all((3 * h1 < 5 * a) & (5 * a < 4 * h1), axis=-1)  # 0.3 < u < 0.4
    return params.r0 + params.r1 * outer + params.r2 * band


def make_hypergrid(dim: int = 2, height: int = 8, **params) -> tuple[Hypergrid, HypergridParams]:
    """Registry factory: `(env, env_params)`; keyword `r0`, `r1`, `r2` override the reward."""
    env = Hypergrid(dim, height)
    return env, env.default_params.replace(**params)
