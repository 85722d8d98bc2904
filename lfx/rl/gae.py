"""Generalised advantage estimation that bootstraps through truncation but not termination."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def gae_advantages(
    reward_t: jax.Array,
    value_t: jax.Array,
    next_value_t: jax.Array,
    terminated_t: jax.Array,
    done_t: jax.Array,
    *,
    gamma: float | jax.Array,
    gae_lambda: float | jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """GAE(gamma, lambda) for one stream of transitions (Schulman et al. 2016, arXiv:1506.02438).

        delta_t = r_t + gamma * (1 - terminated_t) * V(s'_t) - V(s_t)
        A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}

    `s'_t` is the true successor of `s_t` (for an auto-reset environment, the final observation of
    the episode, not the reset one), so a truncated step still bootstraps from V(s'_t) while a
    terminated step does not; `done_t = terminated_t or truncated_t` stops the recursion at every
    episode boundary. The caller vmaps over environments.

    Args:
      reward_t: [T] rewards.
      value_t: [T] V(s_t).
      next_value_t: [T] V(s'_t) of the true next state.
      terminated_t: [T] bool, the episode ended in a terminal state at step t.
      done_t: [T] bool, the episode ended (terminated or truncated) at step t.
      gamma: discount.
      gae_lambda: GAE lambda.

    Returns:
      (advantages [T], value targets [T] = advantages + value_t).
    """
    chex.assert_rank([reward_t, value_t, next_value_t, terminated_t, done_t], 1)
    chex.assert_equal_shape([reward_t, value_t, next_value_t, terminated_t, done_t])
    not_term = 1.0 - terminated_t.astype(value_t.dtype)
    not_done = 1.0 - done_t.astype(value_t.dtype)
    delta_t = reward_t + gamma * not_term * next_value_t - value_t

    def backward(adv_next, inputs):
        delta, nd = inputs
        adv = delta + gamma * gae_lambda * nd * adv_next
        return adv, adv

    _, adv_t = jax.lax.scan(
        backward, jnp.zeros((), value_t.dtype), (delta_t, not_done), reverse=True
    )
    return adv_t, adv_t + value_t
