"""Flow of Reasoning's GFlowNet objectives over groups of trajectories that share a problem.

Yu et al. 2024, "Flow of Reasoning" (arXiv:2406.05673). A batch holds P problems with n
trajectories each (G on-policy samples, then any replayed ones); per trajectory b of problem p,
net_b = sum_t log PF(a_t|s_t) - sum_t log PB, log R_b the (tempered) log reward:

    tb         L = sum_{p,b} mask (log F(s0_pb) + net_pb - log R_pb)^2 / sum mask
               (log Z(p) = the network's log F(s0) head)
    logz_var   zeta_pb = log R_pb - net_pb,   L = mean_p var_{b in p, kept}(zeta_pb)
               (log-partition-variance TB, Zhang et al. 2023, arXiv:2302.05446; FoR's BlocksWorld)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

GFN_METHODS = ("tb", "logz_var")


def grouped_log_partition_variance(zeta, mask):
    """mean_p of the variance of zeta over the kept entries of group p.

    zeta: [P, n] log R(x) + sum log PB - sum log PF per trajectory, grouped by problem; mask: [P, n]
    bool, each row with at least one True. With a full mask this is `lfx.gfn.losses.
    log_partition_variance` applied to each row, averaged over rows.
    """
    n = jnp.sum(mask, 1, keepdims=True)
    mean = jnp.sum(jnp.where(mask, zeta, 0.0), 1, keepdims=True) / n
    return jnp.mean(jnp.sum(jnp.where(mask, (zeta - mean) ** 2, 0.0), 1) / n[:, 0])


def grouped_gfn_loss(logz, net, log_r, mask, *, method: str) -> jax.Array:
    """The module docstring's `tb` or `logz_var` loss; all arguments [P, n], mask bool."""
    if method == "tb":
        delta = jnp.where(mask, logz + net - log_r, 0.0)
        return jnp.sum(delta**2) / jnp.sum(mask)
    return grouped_log_partition_variance(log_r - net, mask)
