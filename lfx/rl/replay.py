"""A uniform replay buffer as a pure pytree: fixed capacity, circular writes, sampled in jit.

    buffer = replay.init(example_transition, capacity)      # leaves [capacity, ...], zeros
    buffer = replay.add(buffer, batch)                      # batch leaves [n, ...]
    sample = replay.sample(buffer, key, batch_size)         # leaves [batch_size, ...]

Everything is a function of arrays, so a buffer lives inside a `lax.scan` training loop and a
`vmap` over seeds or hyperparameters gives every run its own buffer (leaves [S, capacity, ...]).
Writes go to slots `(pos + i) % capacity`; `size` counts the filled slots (at most `capacity`);
`sample` draws indices uniformly from the filled slots, with replacement (as DQN's and SAC's
reference implementations and flashbax's item buffer do). Sampling before anything was added
returns slot 0's zeros; recipes start learning only after `learning_starts` steps.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ReplayBuffer:
    data: Any  # pytree, leaves [capacity, ...]
    pos: jax.Array  # [] int32, the next slot written
    size: jax.Array  # [] int32, filled slots (<= capacity)

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[0]


def init(example: Any, capacity: int) -> ReplayBuffer:
    """An empty buffer for items shaped like `example` (one transition, no batch axis)."""
    if capacity <= 0:
        raise ValueError(f"replay capacity must be positive, got {capacity}.")
    data = jax.tree.map(lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype),
                        example)
    return ReplayBuffer(data, jnp.int32(0), jnp.int32(0))


def add(buffer: ReplayBuffer, batch: Any) -> ReplayBuffer:
    """Writes the `n` items of `batch` (leaves [n, ...]) at slots pos, pos + 1, ... (mod capacity).

    `n` must not exceed the capacity (a later item would overwrite an earlier one of the same call).
    """
    capacity = buffer.capacity
    n = jax.tree.leaves(batch)[0].shape[0]
    if n > capacity:
        raise ValueError(f"cannot add {n} items to a replay buffer of capacity {capacity}.")
    idx = (buffer.pos + jnp.arange(n)) % capacity
    data = jax.tree.map(lambda d, x: d.at[idx].set(x.astype(d.dtype)), buffer.data, batch)
    return ReplayBuffer(data, (buffer.pos + n) % capacity, jnp.minimum(buffer.size + n, capacity))


def sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Any:
    """`batch_size` items drawn uniformly, with replacement, from the filled slots."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda d: d[idx], buffer.data)
