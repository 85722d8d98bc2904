"""Packed trajectory balance: sample without autodiff, then differentiate only the real transitions.

Trajectory balance (Malkin et al. 2022, arXiv:2201.13259) and its log-partition-variance form
(Zhang et al. 2023, arXiv:2302.05446) depend on a trajectory only through S_F[b] = sum_t log
PF(a_t|s_t) and S_B[b] = sum_t log PB(s_{t-1}|s_t). With delta_b = log Z + S_F[b] - S_B[b] - log R[b],

    L_TB = mean_b delta_b^2,
    dL_TB/dtheta = sum_i w_F[b(i)] d log PF(a_i|s_i)/dtheta + w_B[b(i)] d log PB(s_{i-1}|s_i)/dtheta,
    w_F[b] = 2 delta_b / B,   w_B[b] = -2 delta_b / B,   dL_TB/dlog Z = mean_b 2 delta_b,

where i runs over the transitions actually taken and b(i) is the trajectory of transition i. For
log-partition variance, zeta_b = log R[b] + S_B[b] - S_F[b], L = mean_b (zeta_b - mean zeta)^2,
w_F[b] = -2 (zeta_b - mean zeta) / B and w_B = -w_F (the mean's own gradient sums to zero).

So the gradient needs no autodiff through the rollout, and no network work on padding:

1. `sample_packed` (no autodiff): a `lax.while_loop` over a pool of W lanes. A lane whose trajectory
   exits starts the next trajectory (a refill pool) until B have been started; the loop stops when
   all B are done. Every transition taken is written at a running cursor into a packed buffer of
   static capacity B * max_steps (state, action, trajectory id), and S_F, S_B, log R(x), x and the
   length are accumulated per trajectory. With W = B no lane is refilled and, for the same key,
   the trajectories are exactly those of `lfx.gfn.rollout.forward_rollout` (same per-step draws).
2. `packed_grads`: the weights above from the sampled sums (same parameters), then the gradient of
   sum_i w_i log P(.|s_i) over the packed transitions only, `chunk` rows at a time, in a
   `lax.while_loop` that stops after ceil(count / chunk) chunks.

Network work per iteration: W x (number of loop steps) forward passes for sampling plus
ceil(count / chunk) * chunk forward+backward passes, against max_steps x B forward+backward passes
for the padded rollout. Exploration as in `forward_rollout`: actions are drawn from (1 - epsilon)
softmax(logits / temperature) + epsilon uniform; the recorded log PF is the on-policy log softmax.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lfx.gfn.base import GFNEnv, GFNState
from lfx.gfn.networks import PolicyOutput
from lfx.gfn.rollout import exploration_log_probs, masked_log_softmax

PACKED_LOSSES = ("tb", "logz_var")


class PackedTrajectories(NamedTuple):
    """B trajectories stored as one list of transitions (N = capacity >= B * max_steps).

    Row i < count is the forward action `actions[i]` taken at state (`obj[i]`, `time[i]`) by
    trajectory `traj[i]`; rows >= count are unused (`traj` = B). `prev_bwd[i]` is the backward
    action at s_i that returns to s_{i-1} (0 where time = 0).

    Attributes:
      obj: [N, L] int32; time: [N] int32 step index within the trajectory; actions: [N] int32;
      prev_bwd: [N] int32; traj: [N] int32; count: [] int32.
      sum_log_pf: [B] S_F; sum_log_pb: [B] S_B (exit edge has PB = 1); log_reward: [B] log R(x);
      terminal_obj: [B, L] x; length: [B] forward actions, exit included.
    """

    obj: jax.Array
    time: jax.Array
    actions: jax.Array
    prev_bwd: jax.Array
    traj: jax.Array
    count: jax.Array
    sum_log_pf: jax.Array
    sum_log_pb: jax.Array
    log_reward: jax.Array
    terminal_obj: jax.Array
    length: jax.Array


def packed_capacity(num_trajectories: int, max_steps: int, chunk: int) -> int:
    """Rows of the packed buffer: B * max_steps rounded up to a multiple of `chunk`."""
    return -(-num_trajectories * max_steps // chunk) * chunk


def _log_pb(out: PolicyOutput, bmask, prev_bwd, learned_pb):
    if learned_pb:
        logp_b = masked_log_softmax(out.bwd_logits, bmask)
        return jnp.take_along_axis(logp_b, prev_bwd[:, None], axis=-1)[:, 0]
    return -jnp.log(jnp.maximum(bmask.sum(-1), 1).astype(jnp.float32))


def sample_packed(
    key: jax.Array,
    policy_params: Any,
    env: GFNEnv,
    env_params: Any,
    policy_apply: Callable[[Any, jax.Array], PolicyOutput],
    num_trajectories: int,
    *,
    pool_size: int = 0,
    chunk: int = 1,
    epsilon: float | jax.Array = 0.0,
    temperature: float | jax.Array = 1.0,
    learned_pb: bool = False,
) -> PackedTrajectories:
    """Samples B = `num_trajectories` trajectories from s0 into a packed buffer (module docstring).

    Not differentiable (a `while_loop`); gradients are stopped at `policy_params`.

    Args:
      key: typed PRNG key; loop step k draws with `fold_in(key, k)`.
      policy_params, env, env_params, policy_apply: as `forward_rollout`.
      num_trajectories: B.
      pool_size: W lanes sampled in parallel (0: W = B, no refill); 1 <= W <= B.
      chunk: the buffer capacity is rounded up to a multiple of this (see `packed_grads`).
      epsilon, temperature: exploration (traced floats allowed).
      learned_pb: PB from the network's backward logits; else uniform over parents.
    """
    B, T = num_trajectories, env.max_steps
    W = pool_size or B
    if not 1 <= W <= B:
        raise ValueError(f"pool_size must be in [1, num_trajectories={B}] (0 means {B}); got {pool_size}.")
    N = packed_capacity(B, T, chunk)
    params = jax.lax.stop_gradient(policy_params)
    v = lambda f: jax.vmap(f, in_axes=(0, None))
    v2 = lambda f: jax.vmap(f, in_axes=(0, 0, None))
    s0 = env.init_state()
    lanes0 = jax.tree.map(lambda x: jnp.broadcast_to(x, (W, *jnp.shape(x))), s0)
    L = s0.obj.shape[-1]

    init = {
        "k": jnp.zeros((), jnp.int32), "state": lanes0, "lane_traj": jnp.arange(W, dtype=jnp.int32),
        "lane_bwd": jnp.zeros((W,), jnp.int32), "started": jnp.asarray(W, jnp.int32),
        "count": jnp.zeros((), jnp.int32),
        "obj": jnp.zeros((N, L), jnp.int32), "time": jnp.zeros((N,), jnp.int32),
        "actions": jnp.zeros((N,), jnp.int32), "prev_bwd": jnp.zeros((N,), jnp.int32),
        "traj": jnp.full((N,), B, jnp.int32),
        "sum_log_pf": jnp.zeros((B,), jnp.float32), "sum_log_pb": jnp.zeros((B,), jnp.float32),
        "log_reward": jnp.zeros((B,), jnp.float32), "terminal_obj": jnp.zeros((B, L), jnp.int32),
        "length": jnp.zeros((B,), jnp.int32),
    }

    def cond(c):
        return jnp.any(c["lane_traj"] < B)

    def body(c):
        state, tid, active = c["state"], c["lane_traj"], c["lane_traj"] < B
        out = policy_apply(params, v(env.get_obs)(state, env_params))
        fmask = v(env.forward_mask)(state, env_params)
        logits = out.fwd_logits
        sample_logp = exploration_log_probs(logits, fmask, epsilon, temperature)
        action = jax.random.categorical(jax.random.fold_in(key, c["k"]), sample_logp, axis=-1)
        action = action.astype(jnp.int32)
        log_pf = jnp.take_along_axis(masked_log_softmax(logits, fmask), action[:, None], -1)[:, 0]
        bmask = v(env.backward_mask)(state, env_params)
        log_pb = jnp.where(state.time > 0, _log_pb(out, bmask, c["lane_bwd"], learned_pb), 0.0)

        row = jnp.where(active, c["count"] + jnp.cumsum(active) - 1, N)  # N: dropped
        put = lambda buf, x: buf.at[row].set(x, mode="drop")
        new = dict(c)
        new["obj"], new["time"] = put(c["obj"], state.obj), put(c["time"], state.time)
        new["actions"], new["prev_bwd"] = put(c["actions"], action), put(c["prev_bwd"], c["lane_bwd"])
        new["traj"] = put(c["traj"], tid)
        new["count"] = c["count"] + active.sum()
        new["sum_log_pf"] = c["sum_log_pf"].at[tid].add(log_pf, mode="drop")
        new["sum_log_pb"] = c["sum_log_pb"].at[tid].add(log_pb, mode="drop")

        exited = active & (action == env.exit_action)
        done_id = jnp.where(exited, tid, B)
        new["terminal_obj"] = c["terminal_obj"].at[done_id].set(state.obj, mode="drop")
        new["log_reward"] = c["log_reward"].at[done_id].set(
            v(env.log_reward)(state, env_params), mode="drop")
        new["length"] = c["length"].at[done_id].set(state.time + 1, mode="drop")

        nxt = v2(env.step_forward)(state, action, env_params)
        bwd = v2(env.backward_action)(state, jnp.minimum(action, env.exit_action - 1), env_params)
        fresh_id = c["started"] + jnp.cumsum(exited) - 1
        refill = exited & (fresh_id < B)
        sel = lambda m, a, b: jnp.where(m.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
        new["state"] = jax.tree.map(lambda a, b: sel(refill, a, b), lanes0, nxt)
        new["lane_traj"] = jnp.where(exited, jnp.where(refill, fresh_id, B), tid).astype(jnp.int32)
        new["lane_bwd"] = jnp.where(refill, 0, bwd).astype(jnp.int32)
        new["started"] = c["started"] + refill.sum()
        new["k"] = c["k"] + 1
        return new

    c = jax.lax.while_loop(cond, body, init)
    return PackedTrajectories(**{f: c[f] for f in PackedTrajectories._fields})


def packed_weights(loss: str, log_z: jax.Array, batch: PackedTrajectories):
    """Per-trajectory weights of the packed gradient (module docstring).

    Returns `(loss_value, w_f [B], w_b [B], dloss_dlogz, logz_estimate)`.
    """
    sf, sb, lr = batch.sum_log_pf, batch.sum_log_pb, batch.log_reward
    B = sf.shape[0]
    if loss == "tb":
        delta = log_z + sf - sb - lr
        return jnp.mean(delta**2), 2 * delta / B, -2 * delta / B, jnp.mean(2 * delta), log_z
    if loss == "logz_var":
        zeta = lr + sb - sf
        mean = jnp.mean(zeta)
        dev = zeta - mean
        return jnp.mean(dev**2), -2 * dev / B, 2 * dev / B, jnp.zeros_like(log_z), mean
    raise ValueError(f"The packed gradient supports losses {PACKED_LOSSES}; got {loss!r}.")


def packed_grads(
    policy_params: Any,
    log_z: jax.Array,
    batch: PackedTrajectories,
    env: GFNEnv,
    env_params: Any,
    policy_apply: Callable[[Any, jax.Array], PolicyOutput],
    *,
    loss: str = "tb",
    chunk: int = 1024,
    learned_pb: bool = False,
):
    """Loss value and its gradient from a packed batch sampled with these parameters.

    Gradient = grad_theta sum_{i < count} w_F[b(i)] log PF(a_i|s_i) + w_B[b(i)] log PB(s_{i-1}|s_i)
    accumulated over chunks of `chunk` rows (the buffer capacity must be a multiple of `chunk`).

    Returns `(loss_value, grads_like_policy_params, dloss_dlogz, logz_estimate)`.
    """
    value, w_f, w_b, g_logz, logz = packed_weights(loss, log_z, batch)
    N = batch.traj.shape[0]
    if N % chunk:
        raise ValueError(f"Packed buffer of {N} rows is not a multiple of chunk={chunk}.")
    zero = jnp.zeros((1,), w_f.dtype)
    w_f = jax.lax.stop_gradient(jnp.concatenate([w_f, zero]))  # index B (unused rows) -> 0
    w_b = jax.lax.stop_gradient(jnp.concatenate([w_b, zero]))
    v = lambda f: jax.vmap(f, in_axes=(0, None))

    def chunk_objective(p, rows):
        obj, time, actions, prev_bwd, traj = rows
        state = GFNState(time=time, obj=obj, done=jnp.zeros(time.shape, bool))
        out = policy_apply(p, v(env.get_obs)(state, env_params))
        fmask = v(env.forward_mask)(state, env_params)
        lpf = jnp.take_along_axis(masked_log_softmax(out.fwd_logits, fmask), actions[:, None], -1)[:, 0]
        total = jnp.sum(w_f[traj] * lpf)
        if learned_pb:
            lpb = _log_pb(out, v(env.backward_mask)(state, env_params), prev_bwd, True)
            total += jnp.sum(jnp.where(time > 0, w_b[traj], 0.0) * lpb)
        return total

    def body(c):
        i, g = c
        rows = tuple(
            jax.lax.dynamic_slice_in_dim(x, i * chunk, chunk, axis=0)
            for x in (batch.obj, batch.time, batch.actions, batch.prev_bwd, batch.traj)
        )
        gi = jax.grad(chunk_objective)(policy_params, rows)
        return i + 1, jax.tree.map(jnp.add, g, gi)

    n_chunks = (batch.count + chunk - 1) // chunk
    g0 = jax.tree.map(jnp.zeros_like, policy_params)
    _, grads = jax.lax.while_loop(lambda c: c[0] < n_chunks, body, (jnp.zeros((), jnp.int32), g0))
    return value, grads, g_logz, logz


def unpack(batch: PackedTrajectories, max_steps: int):
    """Padded [T, B] view of a packed batch: `(obj [T, B, L], actions [T, B], prev_bwd [T, B],
    valid [T, B])` with step t of trajectory b at [t, b] (zeros where t >= length)."""
    B, L = batch.terminal_obj.shape
    t = jnp.where(batch.traj < B, batch.time, max_steps)  # unused rows are dropped
    obj = jnp.zeros((max_steps, B, L), jnp.int32).at[t, batch.traj].set(batch.obj, mode="drop")
    act = jnp.zeros((max_steps, B), jnp.int32).at[t, batch.traj].set(batch.actions, mode="drop")
    pbw = jnp.zeros((max_steps, B), jnp.int32).at[t, batch.traj].set(batch.prev_bwd, mode="drop")
    valid = jnp.zeros((max_steps, B), bool).at[t, batch.traj].set(True, mode="drop")
    return obj, act, pbw, valid
