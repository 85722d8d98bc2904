"""Exact targets of small GFlowNet environments by enumeration.

* `exact_target`: the terminal distribution p(x) = R(x) / Z and log Z over `env.terminal_objects()`.
* `enumerate_states` / `exact_flows`: every state of the DAG, level by level, and the unique
  Markovian flow consistent with a given backward policy PB (uniform by default):

      F(s) = R(s) 1[s can exit] + sum_{s -> c} F(c) PB(s | c),
      PF(c | s) = F(c) PB(s | c) / F(s),   PF(exit | s) = R(s) / F(s),   Z = F(s0).

  At this flow every GFlowNet loss (FM, DB, TB, SubTB, log-partition variance) is zero, which the
  tests use as an identity. The DAG must be graded (every non-exit forward action goes from level d
  to level d + 1), true of every environment in `lfx.gfn`. NumPy + vmapped env calls; small envs only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lfx.gfn.base import GFNEnv, GFNState


def _batch_state(env: GFNEnv, obj: np.ndarray) -> GFNState:
    n = obj.shape[0]
    return GFNState(
        time=jnp.zeros((n,), jnp.int32), obj=jnp.asarray(obj, jnp.int32), done=jnp.zeros((n,), bool)
    )


def exact_target(env: GFNEnv, env_params: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """Returns `(objects [N, L], probs [N], log_z)` of p(x) = R(x) / Z over terminal objects."""
    objs = env.terminal_objects()
    log_r = np.asarray(
        jax.vmap(env.log_reward, in_axes=(0, None))(_batch_state(env, objs), env_params), np.float64
    )
    log_z = float(np.logaddexp.reduce(log_r))
    return objs, np.exp(log_r - log_z), log_z


class ExactFlows(NamedTuple):
    """Enumerated DAG with its exact flow; tables are indexed like `states`.

    states: [S, L] every state; level: [S] depth; index: dict obj tuple -> row.
    log_flow: [S] log F(s); log_pf: [S, A] (-inf where masked); log_pb: [S, Ab] (-inf where masked);
    log_r: [S]; fwd_mask: [S, A]; bwd_mask: [S, Ab]; log_z: log F(s0).
    """

    states: np.ndarray
    level: np.ndarray
    index: dict
    log_flow: np.ndarray
    log_pf: np.ndarray
    log_pb: np.ndarray
    log_r: np.ndarray
    fwd_mask: np.ndarray
    bwd_mask: np.ndarray
    log_z: float


def enumerate_states(env: GFNEnv, env_params: Any, max_states: int = 200_000) -> list[np.ndarray]:
    """All states reachable from s0, as a list of levels ([N_d, L] arrays)."""
    fmask_fn = jax.jit(jax.vmap(env.forward_mask, in_axes=(0, None)))
    child_fn = jax.jit(
        jax.vmap(jax.vmap(env.apply_forward, in_axes=(None, 0, None)), in_axes=(0, None, None))
    )
    actions = jnp.arange(env.exit_action)
    levels = [np.asarray(env.initial_obj())[None]]
    total = 1
    while True:
        st = _batch_state(env, levels[-1])
        mask = np.asarray(fmask_fn(st, env_params))[:, : env.exit_action]
        kids = np.asarray(child_fn(st, actions, env_params).obj)[mask]
        if kids.shape[0] == 0:
            return levels
        kids = np.unique(kids, axis=0)
        total += kids.shape[0]
        if total > max_states:
            raise ValueError(f"More than {max_states} states: too large to enumerate exactly.")
        levels.append(kids)


def exact_flows(
    env: GFNEnv,
    env_params: Any,
    log_pb_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> ExactFlows:
    """Exact flow for backward policy `log_pb_fn(states [S, L], bwd_mask [S, Ab]) -> [S, Ab]`.

    `log_pb_fn=None` is the uniform PB over parents.
    """
    levels = enumerate_states(env, env_params)
    states = np.concatenate(levels)
    level = np.concatenate([np.full(len(lv), d) for d, lv in enumerate(levels)])
    index = {tuple(s): i for i, s in enumerate(states)}
    st = _batch_state(env, states)
    vm = lambda f: jax.vmap(f, in_axes=(0, None))  # noqa: E731
    fwd_mask = np.asarray(vm(env.forward_mask)(st, env_params))
    bwd_mask = np.asarray(vm(env.backward_mask)(st, env_params))
    log_r = np.asarray(vm(env.log_reward)(st, env_params), np.float64)
    if log_pb_fn is None:
        log_pb = np.where(bwd_mask, -np.log(np.maximum(bwd_mask.sum(1, keepdims=True), 1)), -np.inf)
    else:
        log_pb = np.where(bwd_mask, log_pb_fn(states, bwd_mask), -np.inf)
    S, A = fwd_mask.shape
    child_fn = jax.vmap(jax.vmap(env.apply_forward, in_axes=(None, 0, None)), in_axes=(0, None, None))
    children = np.asarray(child_fn(st, jnp.arange(A - 1), env_params).obj)  # [S, A-1, L]
    bwd_fn = jax.vmap(jax.vmap(env.backward_action, in_axes=(None, 0, None)), in_axes=(0, None, None))
    bwd_act = np.asarray(bwd_fn(st, jnp.arange(A - 1), env_params))  # [S, A-1]
    log_flow = np.full(S, -np.inf)
    log_edge = np.full((S, A), -np.inf)
    for i in np.argsort(-level, kind="stable"):
        if fwd_mask[i, -1]:
            log_edge[i, -1] = log_r[i]
        for a in np.nonzero(fwd_mask[i, :-1])[0]:
            c = index[tuple(children[i, a])]
            log_edge[i, a] = log_flow[c] + log_pb[c, bwd_act[i, a]]
        log_flow[i] = np.logaddexp.reduce(log_edge[i][fwd_mask[i]])
    log_pf = np.where(fwd_mask, log_edge - log_flow[:, None], -np.inf)
    return ExactFlows(
        states, level, index, log_flow, log_pf, log_pb, log_r, fwd_mask, bwd_mask,
        float(log_flow[index[tuple(np.asarray(env.initial_obj()))]]),
    )
