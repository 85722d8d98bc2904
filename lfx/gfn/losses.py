"""GFlowNet losses as pure functions over batched, masked trajectories.

Layout (see `lfx.gfn.rollout.Trajectories`): step arrays are [T, B]; step t is the forward action
a_t taken at state s_t; `valid[t]` is True for t < length; the last valid step is the exit x -> s_f.
`log_pb[t]` = log PB(s_{t-1} | s_t) (0 at t = 0 and at invalid steps); the exit edge has PB = 1.
`log_flow[t]` = log F(s_t); `log_r[t]` = log R(s_t). Every loss returns `(loss, metrics)`; no
stop-gradient is applied inside (callers decide, e.g. for off-policy replay).

Registry `LOSSES` maps a name to the loss; `lfx.gfn.train` selects one by name.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _sum_t(x, valid):
    return jnp.sum(jnp.where(valid, x, 0.0), axis=0)


def trajectory_balance(log_z, log_pf, log_pb, log_reward, valid):
    """Trajectory balance (Malkin et al. 2022, arXiv:2201.13259).

        L = mean_b (log Z + sum_t log PF(a_t|s_t) - sum_t log PB(s_{t-1}|s_t) - log R(x))^2

    Args:
      log_z: scalar learned log-partition function.
      log_pf, log_pb: [T, B]; log_reward: [B]; valid: [T, B] bool.
    """
    delta = log_z + _sum_t(log_pf, valid) - _sum_t(log_pb, valid) - log_reward
    return jnp.mean(delta**2), {"tb/residual_abs": jnp.mean(jnp.abs(delta))}


def log_partition_variance(log_pf, log_pb, log_reward, valid):
    """Log-partition-variance TB (Zhang et al. 2023, "Robust Scheduling with GFlowNets", 2302.05446).

        zeta_b = log R(x_b) + sum_t log PB - sum_t log PF,    L = mean_b (zeta_b - mean_b zeta)^2.

    `metrics["logz"]` = mean_b zeta_b, the implied estimate of log Z. Shapes as `trajectory_balance`.
    """
    zeta = log_reward + _sum_t(log_pb, valid) - _sum_t(log_pf, valid)
    mean = jnp.mean(zeta)
    return jnp.mean((zeta - mean) ** 2), {"logz": mean}


def _edge_targets(log_flow, log_pb, log_r, is_exit):
    """[T, B] right-hand node of each edge: log F(s_{t+1}) + log PB(s_t|s_{t+1}), or log R(x)."""
    nxt = jnp.concatenate([log_flow[1:] + log_pb[1:], jnp.zeros_like(log_flow[:1])], axis=0)
    return jnp.where(is_exit, log_r, nxt)


def detailed_balance(log_flow, log_pf, log_pb, log_r, valid, is_exit):
    """Detailed balance (Bengio et al. 2023, "GFlowNet Foundations", arXiv:2111.09266).

        (log F(s) + log PF(s'|s) - log F(s') - log PB(s|s'))^2  on every edge s -> s',
        (log F(x) + log PF(exit|x) - log R(x))^2                on the exit edge,

    averaged over valid edges. Args: [T, B] arrays as in the module docstring.
    """
    delta = log_flow + log_pf - _edge_targets(log_flow, log_pb, log_r, is_exit)
    n = jnp.maximum(valid.sum(), 1)
    return jnp.sum(jnp.where(valid, delta**2, 0.0)) / n, {}


def subtrajectory_balance(log_flow, log_pf, log_pb, log_r, valid, is_exit, *, lam=0.9):
    """Sub-trajectory balance (Madan et al. 2023, arXiv:2209.12782).

    Nodes s_0..s_n of a trajectory with exit at step n, plus s_f whose flow is pinned to R(x)
    (u_{n+1} := log R(x)); for 0 <= i < j <= n + 1,

        r_ij = log F(s_i) + sum_{k=i}^{j-1} log PF(s_{k+1}|s_k) - log F(s_j) - sum log PB(s_k|s_{k+1}),
        L_b = sum_{i<j} lam^{j-i} r_ij^2 / sum_{i<j} lam^{j-i},   L = mean_b L_b.

    Args: [T, B] arrays as in the module docstring; `lam` (traced allowed) the length weight.
    """
    T, B = log_pf.shape
    length = valid.sum(0)  # n + 1 edges
    idx = jnp.arange(T + 1)[:, None]
    lf = jnp.concatenate([log_flow, jnp.zeros((1, B), log_flow.dtype)], 0)
    lr_exit = jnp.sum(jnp.where(is_exit, log_r, 0.0), axis=0)
    node = jnp.where(idx < length, lf, jnp.where(idx == length, lr_exit, 0.0))  # [T+1, B]
    pb_next = jnp.concatenate([log_pb[1:], jnp.zeros((1, B), log_pb.dtype)], 0)
    edge = jnp.where(valid, log_pf - pb_next, 0.0)
    cum = jnp.concatenate([jnp.zeros((1, B), edge.dtype), jnp.cumsum(edge, 0)], 0)  # [T+1, B]
    u = node - cum  # r_ij = u_i - u_j
    i, j = idx[:, 0][:, None], idx[:, 0][None, :]
    pair = (i < j)[..., None] & (j[..., None] <= length)  # [T+1, T+1, B]
    w = jnp.where(pair, jnp.asarray(lam, jnp.float32) ** (j - i)[..., None], 0.0)
    r = u[:, None, :] - u[None, :, :]
    per_traj = jnp.sum(w * r**2, (0, 1)) / jnp.maximum(jnp.sum(w, (0, 1)), 1e-30)
    return jnp.mean(per_traj), {}


def flow_matching(log_in_edges, in_mask, log_out_edges, out_mask, valid):
    """Flow matching (Bengio et al. 2021, arXiv:2106.04399), in log space.

        L = mean over visited s != s0 of (log sum_{p -> s} F(p -> s) - log sum_{s -> c} F(s -> c))^2,

    where the out-edges include the exit edge whose flow is R(s) (when s can exit).

    Args:
      log_in_edges: [T, B, P] log F(parent_b -> s_t) for every backward action b.
      in_mask: [T, B, P] bool, which parents exist.
      log_out_edges: [T, B, A] log F(s_t -> child_a), exit = log R(s_t).
      out_mask: [T, B, A] bool.
      valid: [T, B] bool.
    """
    lin = jax.nn.logsumexp(jnp.where(in_mask, log_in_edges, -jnp.inf), axis=-1)
    lout = jax.nn.logsumexp(jnp.where(out_mask, log_out_edges, -jnp.inf), axis=-1)
    t = jnp.arange(valid.shape[0])[:, None]
    keep = valid & (t > 0)
    delta = jnp.where(keep, lin - lout, 0.0)
    return jnp.sum(delta**2) / jnp.maximum(keep.sum(), 1), {}


LOSSES = {
    "tb": trajectory_balance,
    "db": detailed_balance,
    "subtb": subtrajectory_balance,
    "fm": flow_matching,
    "logz_var": log_partition_variance,
}
