"""Fill-in-any-order construction: `length` empty slots, each set once to one of `vocab` values.

This is the non-autoregressive sequence DAG of Malkin et al. 2022 ("Trajectory balance: Improved
credit assignment in GFlowNets", arXiv:2201.13259) and the spin-assignment DAG of Zhang et al. 2022
("Generative Flow Networks for Discrete Probabilistic Modeling", arXiv:2202.01361).

State object: [length] int32, -1 for an empty slot. Forward action `p * vocab + v` writes value v at
empty slot p; the exit action (`length * vocab`) is allowed only once every slot is filled, so every
trajectory has exactly `length + 1` forward actions. Backward action `p` empties a filled slot p.
Observation: one-hot of (value + 1) per slot, [length * (vocab + 1)]. Subclasses give `log_reward`.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from lfx.gfn.base import GFNEnv, GFNState


class PositionalEnv(GFNEnv):
    """Base: `length` slots over `vocab` values, any filling order."""

    def __init__(self, length: int, vocab: int):
        if length < 1 or vocab < 2:
            raise ValueError(f"Need length >= 1 and vocab >= 2; got length={length}, vocab={vocab}.")
        self.length = length
        self.vocab = vocab
        self.obj_size = length
        self.num_actions = length * vocab + 1
        self.num_backward_actions = length
        self.max_steps = length + 1
        self.obs_size = length * (vocab + 1)

    def initial_obj(self) -> jax.Array:
        return jnp.full((self.length,), -1, jnp.int32)

    def forward_mask(self, state: GFNState, params) -> jax.Array:
        empty = state.obj < 0
        writes = jnp.repeat(empty, self.vocab)
        return jnp.concatenate([writes, jnp.all(~empty)[None]])

    def backward_mask(self, state: GFNState, params) -> jax.Array:
        return state.obj >= 0

    def apply_forward(self, state, action, params):
        pos, val = action // self.vocab, action % self.vocab
        return state.replace(obj=state.obj.at[pos].set(val), time=state.time + 1)

    def apply_backward(self, state, bwd_action, params):
        return state.replace(obj=state.obj.at[bwd_action].set(-1), time=state.time - 1)

    def backward_action(self, state, action, params):
        return action // self.vocab

    def forward_action(self, state, bwd_action, params):
        return bwd_action * self.vocab + state.obj[bwd_action]

    def get_obs(self, state: GFNState, params=None, key=None) -> jax.Array:
        return jax.nn.one_hot(state.obj + 1, self.vocab + 1, dtype=jnp.float32).reshape(-1)

    def terminal_index(self, obj):
        return jnp.sum(obj * self.vocab ** jnp.arange(self.length - 1, -1, -1), axis=-1)

    def terminal_objects(self) -> np.ndarray:
        if self.vocab**self.length > 2**22:
            raise ValueError(
                f"{self.vocab}^{self.length} terminal objects are too many to enumerate; "
                "use a smaller length or vocabulary for exact metrics."
            )
        grid = itertools.product(range(self.vocab), repeat=self.length)
        return np.asarray(list(grid), np.int32).reshape(-1, self.length)
