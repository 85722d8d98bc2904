"""Replay buffer of terminal objects (a fixed-size ring), for off-policy GFlowNet training.

Stored objects are replayed as trajectories sampled backwards with PB (`rollout.backward_rollout`),
which is valid for any loss whose optimum does not depend on the sampling distribution (all of
`lfx.gfn.losses`). Pure `(init, add, sample)`; the state is a struct of arrays. `grouped_replay_*`:
one ring of distinct objects per group (per problem, for Flow of Reasoning).
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


@struct.dataclass
class GroupedReplayState:
    """One ring buffer of DISTINCT objects per group (e.g. per reasoning problem, as FoR keys its
    buffer by problem). obj: [G, C, L] int32; log_r: [G, C]; count: [G] objects ever written."""

    obj: jax.Array
    log_r: jax.Array
    count: jax.Array


def grouped_replay_init(num_groups: int, capacity: int, obj_size: int) -> GroupedReplayState:
    return GroupedReplayState(
        obj=jnp.zeros((num_groups, capacity, obj_size), jnp.int32),
        log_r=jnp.full((num_groups, capacity), -jnp.inf),
        count=jnp.zeros((num_groups,), jnp.int32),
    )


def grouped_replay_add(state, group, obj, log_r, mask):
    """Writes obj[b] ([B, L]) into group[b]'s ring where mask[b], unless that group already holds it
    or an earlier row of the batch carries the same (group, object). Returns the new state."""
    G, C, _ = state.obj.shape
    B = obj.shape[0]
    size = jnp.minimum(state.count, C)[group]  # [B]
    stored = jnp.all(state.obj[group] == obj[:, None, :], -1) & (jnp.arange(C)[None] < size[:, None])
    same = (group[:, None] == group[None]) & jnp.all(obj[:, None] == obj[None], -1)  # [B, B]
    earlier = jnp.arange(B)[None] < jnp.arange(B)[:, None]  # [b, b']: b' < b
    new = mask & ~jnp.any(stored, -1) & ~jnp.any(same & earlier & mask[None], -1)
    rank = jnp.sum((group[:, None] == group[None]) & earlier & new[None], -1)
    new = new & (rank < C)
    pos = (state.count[group] + rank) % C
    g = jnp.where(new, group, G)  # out of range: dropped
    return GroupedReplayState(
        obj=state.obj.at[g, pos].set(obj, mode="drop"),
        log_r=state.log_r.at[g, pos].set(log_r, mode="drop"),
        count=state.count.at[group].add(new.astype(jnp.int32)),
    )


def grouped_replay_sample(key, state, group, n: int):
    """n objects per entry of `group` ([M]), uniform with replacement within the group.

    Returns (obj [M, n, L], log_r [M, n], valid [M, n]); valid is False for an empty group."""
    size = jnp.minimum(state.count, state.obj.shape[1])[group]
    idx = jax.random.randint(key, (group.shape[0], n), 0, jnp.maximum(size, 1)[:, None])
    obj = state.obj[group[:, None], idx]
    return obj, state.log_r[group[:, None], idx], jnp.broadcast_to((size > 0)[:, None], idx.shape)
