"""Replay buffer of terminal objects (a fixed-size ring), for off-policy GFlowNet training.

Stored objects are replayed as trajectories sampled backwards with PB (`rollout.backward_rollout`),
which is valid for any loss whose optimum does not depend on the sampling distribution (all of
`lfx.gfn.losses`). Pure `(init, add, sample)`; the state is a struct of arrays.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ReplayState:
    """obj: [C, L] int32; log_r: [C]; pos: next write slot; size: number filled."""

    obj: jax.Array
    log_r: jax.Array
    pos: jax.Array
    size: jax.Array


def replay_init(capacity: int, obj_size: int) -> ReplayState:
    return ReplayState(
        obj=jnp.zeros((capacity, obj_size), jnp.int32),
        log_r=jnp.full((capacity,), -jnp.inf),
        pos=jnp.zeros((), jnp.int32),
        size=jnp.zeros((), jnp.int32),
    )


def replay_add(state: ReplayState, obj: jax.Array, log_r: jax.Array) -> ReplayState:
    """Writes a batch ([B, L], [B]) at the ring position, overwriting the oldest entries."""
    cap, b = state.obj.shape[0], obj.shape[0]
    idx = (state.pos + jnp.arange(b)) % cap
    return ReplayState(
        obj=state.obj.at[idx].set(obj),
        log_r=state.log_r.at[idx].set(log_r),
        pos=(state.pos + b) % cap,
        size=jnp.minimum(state.size + b, cap),
    )


def replay_sample(key: jax.Array, state: ReplayState, n: int) -> tuple[jax.Array, jax.Array]:
    """n objects drawn uniformly with replacement from the filled part; ([n, L], [n])."""
    idx = jax.random.randint(key, (n,), 0, jnp.maximum(state.size, 1))
    return state.obj[idx], state.log_r[idx]
