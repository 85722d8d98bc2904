"""Outcome teleportation: detailed balance with the outcome's reward carried into every transition.

Pan et al. 2024, "Pre-Training and Fine-Tuning Generative Flow Networks" (OC-GFN, arXiv:2310.03419),
Sec. 4.1. For an outcome-conditioned GFlowNet with R(x|y) = 1[x = y] the reward is sparse and, with
plain detailed balance, reaches the early transitions of a long trajectory only after many updates.
Outcome teleportation multiplies every transition of a trajectory tau = (s_0 -> ... -> s_n = x) by
the outcome's reward R(x|y):

    F(s_t|y) PF(s_t+1|s_t, y) = F(s_t+1|y) PB(s_t|s_t+1) R(x|y),      t < n   (non-exit edges)
    F(x|y)   PF(exit|x, y)    = R(x|y)                                         (exit edge)

    L_OT = sum_{t valid} (log F(s_t|y) + log PF(a_t|s_t, y) - [log F(s_t+1|y) + log PB(s_t|s_t+1)]
                          - log R(x|y))^2 / #valid edges

(the exit edge's bracket is 0: its target is log R(x|y) alone, as in detailed balance, so the
reward is not counted twice). On a successful trajectory (x = y) R = 1 and L_OT is conditional
detailed balance: zero at the exact outcome-conditioned flow (tests/gfn/test_gfn_teleport.py checks
it on every path of hypergrid 2x4). On a failed one (x != y, R = 0) every transition of the
trajectory is told that its flow towards y is zero, which is how the negative examples of OC-GFN's
contrastive pre-training reach the early states at once. log 0 is replaced by a finite floor
`log_r_fail` (our choice; the paper's handling of log 0 is not known to us). Note: on a failed
trajectory whose first transitions still lead towards y, the exact flow does NOT satisfy the
teleported equation (its edge flow there is > 0): the loss on negatives is a training signal, not a
consistency condition, and it is zero only in the limit where such trajectories are not sampled
(the exact conditional policy reaches y with probability 1).

What is confirmed and what is ours: public reviews of the paper and the issue that asked for this
describe outcome teleportation as "a modified detailed balance that carries the terminal reward into
every transition"; the paper's body was not readable here, so the equation above is our
reconstruction of that description, and the floor for log 0 is our choice.

Shapes: [T, B] step arrays as in `lfx.gfn.rollout.Trajectories` (`log_pb[t]` = log PB(s_t-1|s_t));
outcome rewards [B].
"""

from __future__ import annotations

import chex
import jax.numpy as jnp


def outcome_log_reward(terminal_obj, y, log_r_fail):
    """[B] log R(x|y): 0 where x = y (all slots), `log_r_fail` (finite floor for log 0) elsewhere.

    terminal_obj, y: [B, L].
    """
    return jnp.where(jnp.all(terminal_obj == y, -1), 0.0, log_r_fail)


def teleported_detailed_balance(log_flow, log_pf, log_pb, log_r_outcome, valid, is_exit):
    """Outcome-teleportation loss L_OT (module docstring).

    Args:
      log_flow: [T, B] log F(s_t|y); log_pf: [T, B] log PF(a_t|s_t, y) of the action taken;
      log_pb: [T, B] log PB(s_t-1|s_t); log_r_outcome: [B] log R(x|y) of each trajectory's outcome;
      valid, is_exit: [T, B] bool.
    Returns `(loss, metrics)`; no gradient is stopped inside (the caller decides).
    """
    chex.assert_equal_shape([log_flow, log_pf, log_pb, valid, is_exit])
    chex.assert_rank(log_r_outcome, 1)
    nxt = jnp.concatenate([log_flow[1:] + log_pb[1:], jnp.zeros_like(log_flow[:1])], axis=0)
    rhs = jnp.where(is_exit, 0.0, nxt) + log_r_outcome[None]
    delta = log_flow + log_pf - rhs
    n = jnp.maximum(valid.sum(), 1)
    loss = jnp.sum(jnp.where(valid, delta**2, 0.0)) / n
    return loss, {"teleport/residual_abs": jnp.sum(jnp.where(valid, jnp.abs(delta), 0.0)) / n}
