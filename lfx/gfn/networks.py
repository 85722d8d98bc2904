"""MLP policy/flow network for GFlowNets: one trunk, one linear head split into PF, PB and log F.

One evaluation per visited state gives everything every loss needs: forward logits (PF), backward
logits (PB, when learned) and the state log-flow log F(s) (for DB, SubTB). Pure `(init, apply)`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class PolicyOutput(NamedTuple):
    """fwd_logits: [..., A]; bwd_logits: [..., Ab] (zeros if PB is uniform); log_flow: [...]."""

    fwd_logits: jax.Array
    bwd_logits: jax.Array
    log_flow: jax.Array


def mlp_init(key: jax.Array, sizes: tuple[int, ...]) -> list[dict[str, jax.Array]]:
    """He-uniform weights, zero biases, for layer widths `sizes` (input first, output last)."""
    params = []
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = jnp.sqrt(6.0 / m) if i < len(sizes) - 2 else jnp.sqrt(1.0 / m)
        w = jax.random.uniform(jax.random.fold_in(key, i), (m, n), jnp.float32, -bound, bound)
        params.append({"w": w, "b": jnp.zeros((n,), jnp.float32)})
    return params


def mlp_apply(params: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    """ReLU MLP; x: [..., in] -> [..., out]."""
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def make_policy(
    obs_size: int,
    num_actions: int,
    num_backward_actions: int,
    *,
    hidden: tuple[int, ...] = (256, 256),
    learned_pb: bool = False,
    with_flow: bool = False,
):
    """Returns `(init(key) -> params, apply(params, obs [..., obs_size]) -> PolicyOutput)`.

    The head has `num_actions` (+ `num_backward_actions` if `learned_pb`) (+ 1 if `with_flow`)
    outputs, so a TB policy with a uniform PB is exactly an MLP obs -> hidden -> num_actions.
    """
    n_out = num_actions + (num_backward_actions if learned_pb else 0) + (1 if with_flow else 0)

    def init(key):
        return mlp_init(key, (obs_size, *hidden, n_out))

    def apply(params, obs):
        out = mlp_apply(params, obs)
        fwd = out[..., :num_actions]
        if learned_pb:
            bwd = out[..., num_actions : num_actions + num_backward_actions]
        else:
            bwd = jnp.zeros((*out.shape[:-1], num_backward_actions), out.dtype)
        log_flow = out[..., -1] if with_flow else jnp.zeros(out.shape[:-1], out.dtype)
        return PolicyOutput(fwd, bwd, log_flow)

    return init, apply
