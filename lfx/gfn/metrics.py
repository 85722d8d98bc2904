"""GFlowNet metrics: exact (enumerated) distribution distances and sample-based mode/reward metrics.

Exact metrics compare the sampler's terminal distribution P_T(x), computed EXACTLY by dynamic
programming over the enumerated DAG (no sampling noise), with the target p(x) = R(x) / Z:

    TV(p, q)  = 1/2 sum_x |p(x) - q(x)|            (the half-sum convention; in [0, 1])
    JSD(p, q) = 1/2 KL(p || m) + 1/2 KL(q || m),  m = (p + q) / 2   (nats; in [0, log 2])
    |log Z - log Z_true|

"L1" in the literature is sometimes the mean over states (Malkin et al. 2022) or the plain sum
(= 2 TV); lfx reports the half-sum TV only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lfx.gfn.base import GFNEnv
from lfx.gfn.exact import _batch_state, enumerate_states
from lfx.gfn.rollout import masked_log_softmax


def total_variation(p: jax.Array, q: jax.Array) -> jax.Array:
    """1/2 sum |p - q| over the last axis."""
    return 0.5 * jnp.sum(jnp.abs(p - q), axis=-1)


def jensen_shannon(p: jax.Array, q: jax.Array) -> jax.Array:
    """Jensen-Shannon divergence in nats over the last axis (0 log 0 = 0)."""
    m = 0.5 * (p + q)

    def kl(a, b):
        return jnp.sum(jnp.where(a > 0, a * (jnp.log(jnp.maximum(a, 1e-38)) - jnp.log(jnp.maximum(b, 1e-38))), 0.0), -1)

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


class DAG(NamedTuple):
    """Enumerated DAG as arrays: obs [S, O], child [S, A-1] (index, -1 masked), fwd_mask [S, A],
    log_r [S], target [S] (p(x), 0 where s cannot exit), log_z_true, s0 index, num_levels."""

    obs: jax.Array
    child: jax.Array
    fwd_mask: jax.Array
    log_r: jax.Array
    target: jax.Array
    log_z_true: float
    s0: int
    num_levels: int
    states: np.ndarray


def build_dag(env: GFNEnv, env_params: Any) -> DAG:
    """Enumerates every state of a small environment (see `lfx.gfn.exact.enumerate_states`)."""
    levels = enumerate_states(env, env_params)
    states = np.concatenate(levels)
    index = {tuple(s): i for i, s in enumerate(states)}

    @jax.jit
    def tables(obj):
        st = _batch_state(env, obj)
        vm = lambda f: jax.vmap(f, in_axes=(0, None))  # noqa: E731
        kids = jax.vmap(jax.vmap(env.apply_forward, in_axes=(None, 0, None)), in_axes=(0, None, None))(
            st, jnp.arange(env.exit_action), env_params
        ).obj
        return (vm(env.forward_mask)(st, env_params), vm(env.log_reward)(st, env_params), kids,
                vm(env.get_obs)(st, env_params))

    fwd_mask, log_r, kids, obs = jax.tree.map(np.asarray, tables(states))
    log_r = log_r.astype(np.float64)
    child = np.full(fwd_mask[:, :-1].shape, -1, np.int32)
    for i, a in zip(*np.nonzero(fwd_mask[:, :-1])):
        child[i, a] = index[tuple(kids[i, a])]
    lr = np.where(fwd_mask[:, -1], log_r, -np.inf)
    log_z = np.logaddexp.reduce(lr)
    return DAG(
        obs=jnp.asarray(obs),
        child=jnp.asarray(child),
        fwd_mask=jnp.asarray(fwd_mask),
        log_r=jnp.asarray(np.where(fwd_mask[:, -1], log_r, 0.0), jnp.float32),
        target=jnp.asarray(np.exp(lr - log_z), jnp.float32),
        log_z_true=float(log_z),
        s0=index[tuple(np.asarray(env.initial_obj()))],
        num_levels=len(levels),
        states=states,
    )


def terminal_distribution(dag: DAG, log_pf: jax.Array) -> jax.Array:
    """Exact P_T(x) ([S]) of the forward policy `log_pf` ([S, A], masked) by DP over the DAG.

        P(s0) = 1,  P(c) = sum_{s -> c} P(s) PF(c|s),  P_T(x) = P(x) PF(exit|x).
    """
    S = dag.child.shape[0]
    pf = jnp.exp(log_pf)
    e0 = jnp.zeros((S,), pf.dtype).at[dag.s0].set(1.0)
    src = jnp.broadcast_to(jnp.arange(S)[:, None], dag.child.shape).reshape(-1)
    dst = dag.child.reshape(-1)
    ok = dst >= 0
    w = jnp.where(ok, pf[:, :-1].reshape(-1), 0.0)
    dst = jnp.where(ok, dst, 0)

    def body(_, reach):
        return e0 + jax.ops.segment_sum(reach[src] * w, dst, num_segments=S)

    reach = jax.lax.fori_loop(0, dag.num_levels - 1, body, e0)
    return reach * pf[:, -1]


def exact_metrics(
    dag: DAG,
    policy_params: Any,
    policy_apply: Callable,
    log_z: jax.Array,
    *,
    exit_logit_from_reward: bool = False,
) -> dict[str, jax.Array]:
    """TV (half-sum), JSD and |log Z - log Z_true| of the policy's exact terminal distribution."""
    out = policy_apply(policy_params, dag.obs)
    logits = out.fwd_logits
    if exit_logit_from_reward:
        logits = logits.at[:, -1].set(dag.log_r)
    q = terminal_distribution(dag, masked_log_softmax(logits, dag.fwd_mask))
    return {
        "eval/tv": total_variation(dag.target, q),
        "eval/jsd": jensen_shannon(dag.target, q),
        "eval/logz_err": jnp.abs(log_z - dag.log_z_true),
    }


# ---------------------------------------------------------------- sample-based metrics
def modes_found(found: jax.Array, hits: jax.Array) -> jax.Array:
    """Updates a [M] bool record of discovered modes with a [B, M] bool hit matrix."""
    return found | jnp.any(hits, axis=0)


def top_k_reward(log_r: np.ndarray, objs: np.ndarray, k: int) -> float:
    """Mean reward of the k highest-reward DISTINCT objects among samples (objs [N, L])."""
    _, first = np.unique(objs, axis=0, return_index=True)
    r = np.sort(np.exp(np.asarray(log_r)[first]))[::-1]
    return float(r[:k].mean())


def diversity(objs: np.ndarray) -> float:
    """Mean pairwise Hamming distance (number of differing slots) among DISTINCT objects."""
    u = np.unique(np.asarray(objs), axis=0)
    if len(u) < 2:
        return 0.0
    d = (u[:, None, :] != u[None, :, :]).sum(-1)
    n = len(u)
    return float(d.sum() / (n * (n - 1)))
