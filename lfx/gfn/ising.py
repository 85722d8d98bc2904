"""Ising model on a small periodic lattice, spins assigned one site at a time in any order.

Zhang et al. 2022 ("Generative Flow Networks for Discrete Probabilistic Modeling",
arXiv:2202.01361): the target is the Boltzmann distribution of an N x N torus,

    log R(s) = J * sum_{<i,j>} s_i s_j + h * sum_i s_i,    s_i in {-1, +1},

summed over nearest-neighbour edges (each edge once). Slot value 0 is spin -1, value 1 is spin +1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from lfx.gfn.base import GFNState
from lfx.gfn.positional import PositionalEnv


@struct.dataclass
class IsingParams:
    coupling: float = 0.2
    field: float = 0.0
    max_steps_in_episode: int = 1 << 30


def torus_edges(side: int) -> np.ndarray:
    """[E, 2] site pairs of nearest neighbours on a side x side torus (each edge once)."""
    edges = set()
    for r in range(side):
        for c in range(side):
            i = r * side + c
            for j in (r * side + (c + 1) % side, ((r + 1) % side) * side + c):
                if i != j:
                    edges.add((min(i, j), max(i, j)))
    return np.asarray(sorted(edges), np.int32).reshape(-1, 2)


class Ising(PositionalEnv):
    """side x side periodic lattice of spins."""

    def __init__(self, side: int = 3):
        if side < 2:
            raise ValueError(f"Ising needs side >= 2; got {side}.")
        super().__init__(side * side, 2)
        self.side = side
        self.edges = torus_edges(side)

    @property
    def name(self) -> str:
        return f"Ising-{self.side}x{self.side}"

    @property
    def default_params(self) -> IsingParams:
        return IsingParams()

    def log_reward(self, state: GFNState, params: IsingParams) -> jax.Array:
        return ising_log_reward(state.obj, self.edges, params)


def ising_log_reward(obj: jax.Array, edges: np.ndarray, params: IsingParams) -> jax.Array:
    """log R for spin slots `obj` ([..., N*N] in {0, 1}); returns [...]."""
    s = 2 * obj.astype(jnp.float32) - 1
    pair = jnp.sum(s[..., edges[:, 0]] * s[..., edges[:, 1]], axis=-1)
    return params.coupling * pair + params.field * jnp.sum(s, axis=-1)


def make_ising(side: int = 3, **params):
    """Registry factory: `(env, env_params)`; keywords `coupling`, `field`."""
    env = Ising(side)
    return env, env.default_params.replace(**params)
