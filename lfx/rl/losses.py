"""PPO's objectives as pure functions: clipped surrogate, clipped value loss, entropy bonus.

Schulman et al. 2017, "Proximal Policy Optimization Algorithms", arXiv:1707.06347. All losses are
to be MINIMISED. Inputs are flat minibatches ([M]); advantages arrive normalised and without
gradient.

A policy objective is pluggable: any function with the signature of `ppo_clip_objective`,

    objective(objective_params, log_ratio [M], advantages [M], *, clip_eps, progress, lifetime)
        -> (loss, metrics)

where `progress` = n / N is the fraction of the agent's lifetime elapsed (update n of N) and
`lifetime` = N. Learned objectives (`lfx.meta`) take their meta-parameters as `objective_params`, so
`jax.grad` over them is a meta-gradient and `jax.vmap` over them is an ES population.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

PolicyObjective = Callable[..., tuple[jax.Array, dict[str, jax.Array]]]


def ppo_clip_objective(
    objective_params: Any,
    log_ratio: jax.Array,
    advantages: jax.Array,
    *,
    clip_eps: float | jax.Array,
    progress: float | jax.Array = 0.0,
    lifetime: float | jax.Array = 1.0,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """PPO's clipped surrogate: L = -E[min(r A, clip(r, 1 - eps, 1 + eps) A)], r = exp(log_ratio).

    Args:
      objective_params: unused (PPO has no meta-parameters); kept for the common signature.
      log_ratio: [M] log pi(a|s) - log pi_old(a|s).
      advantages: [M] advantages (no gradient flows into them).
      clip_eps: clipping epsilon.
      progress, lifetime: unused by PPO.

    Returns:
      (loss, {"clip_frac": fraction of samples whose ratio left [1 - eps, 1 + eps]}).
    """
    del objective_params, progress, lifetime
    ratio = jnp.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    loss = -jnp.mean(jnp.minimum(unclipped, clipped))
    clip_frac = jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32))
    return loss, {"clip_frac": clip_frac}


def policy_gradient_objective(
    objective_params: Any,
    log_ratio: jax.Array,
    advantages: jax.Array,
    *,
    clip_eps: float | jax.Array = 0.0,
    progress: float | jax.Array = 0.0,
    lifetime: float | jax.Array = 1.0,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Unclipped importance-weighted policy-gradient surrogate: L = -E[r A] (no trust region)."""
    del objective_params, clip_eps, progress, lifetime
    return -jnp.mean(jnp.exp(log_ratio) * advantages), {}


POLICY_OBJECTIVES: dict[str, PolicyObjective] = {
    "ppo_clip": ppo_clip_objective,
    "policy_gradient": policy_gradient_objective,
}


def clipped_value_loss(
    value: jax.Array,
    old_value: jax.Array,
    target: jax.Array,
    *,
    clip_eps: float | jax.Array,
) -> jax.Array:
    """PPO's clipped value loss: 0.5 E[max((V - G)^2, (V_old + clip(V - V_old, +-eps) - G)^2)].

    Args:
      value: [M] V(s) under the current parameters.
      old_value: [M] V(s) when the data was collected.
      target: [M] value targets (GAE returns).
      clip_eps: clipping epsilon (PPO reuses the policy's).
    """
    clipped = old_value + jnp.clip(value - old_value, -clip_eps, clip_eps)
    return 0.5 * jnp.mean(jnp.maximum(jnp.square(value - target), jnp.square(clipped - target)))


def entropy_bonus(entropy: jax.Array) -> jax.Array:
    """Mean policy entropy over the minibatch ([M] -> []); the loss subtracts ent_coef times it."""
    return jnp.mean(entropy)
