"""Meta-gradients: backpropagation through a window of inner updates, Adam on the meta-parameters.

    φ ← φ - Adam( ∇_φ L_meta(φ, θ_{n+K}(φ)) ),   θ_{k+1} = U(φ, θ_k, key_k),   k = n .. n+K-1,

the truncated estimator of LPG (Oh et al. 2020, "Discovering Reinforcement Learning Algorithms",
arXiv:2007.08794: K = 5 inner updates, then an actor-critic meta-loss on fresh data) and the one the
TA-LPO/TA-LPG paper contrasts with ES (Jackson et al. 2024, arXiv:2402.05828). The inner state after
the window carries on (gradient stopped), so successive windows walk along one agent lifetime; the
caller resets it when the lifetime ends.

The inner problem is given as two pure functions:
  inner_update(meta_params, inner_state, key) -> inner_state      (one agent update)
  meta_loss(meta_params, inner_state, key) -> scalar              (minimised)
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import optax


def make_window_loss(inner_update: Callable, meta_loss: Callable, *, window: int) -> Callable:
    """L(φ, θ_n, key) = meta_loss(φ, θ_{n+K}): the differentiable unroll of `window` inner updates.

    Returns:
      loss_fn(meta_params, inner_state, key) -> (loss, inner_state after the window).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1 inner update, got {window}.")

    def loss_fn(meta_params, inner_state, key):
        keys = jax.random.split(key, window + 1)

        def body(s, k):
            return inner_update(meta_params, s, k), None

        s, _ = jax.lax.scan(body, inner_state, keys[:-1])
        return meta_loss(meta_params, s, keys[-1]), s

    return loss_fn


def make_metagrad_step(
    inner_update: Callable,
    meta_loss: Callable,
    *,
    window: int,
    optimizer: optax.GradientTransformation | None = None,
) -> tuple[Callable, optax.GradientTransformation]:
    """One meta-gradient step over a window of inner updates.

    Args:
      inner_update, meta_loss: see module docstring.
      window: K, inner updates backpropagated through.
      optimizer: defaults to Adam(1e-4) (LPG).

    Returns:
      (step, optimizer) with step(meta_params, opt_state, inner_state, key) ->
      (meta_params, opt_state, inner_state (gradient stopped), {"meta/loss", "meta/grad_norm"}).
    """
    optimizer = optimizer or optax.adam(1e-4)
    loss_fn = make_window_loss(inner_update, meta_loss, window=window)

    def step(meta_params: Any, opt_state: Any, inner_state: Any, key: jax.Array):
        (loss, s), grads = jax.value_and_grad(loss_fn, has_aux=True)(meta_params, inner_state, key)
        updates, opt_state = optimizer.update(grads, opt_state, meta_params)
        meta_params = optax.apply_updates(meta_params, updates)
        metrics = {"meta/loss": loss, "meta/grad_norm": optax.tree.norm(grads)}
        return meta_params, opt_state, jax.lax.stop_gradient(s), metrics

    return step, optimizer
