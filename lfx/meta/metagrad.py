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

`make_train` makes whole meta-training runs a recipe (`init(key, hparams)`, `run(state, hparams, *,
num_updates)`, `train`) with the meta learning rate traced (`HParams.meta_lr`), for the host harness
(`lfx.experiment.run_chunked`: checkpoints, exact resume).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct


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


@struct.dataclass
class HParams:
    """Traced meta-gradient settings: Adam's step size on the meta-parameters (LPG: 1e-4)."""

    meta_lr: float = 1e-4

    def validate(self, prefix: str = "hparams") -> None:
        if not isinstance(self.meta_lr, jax.core.Tracer) and not float(self.meta_lr) > 0:
            raise ValueError(f"config.{prefix}.meta_lr must be a positive step size, e.g. 1e-3, got "
                             f"{self.meta_lr}.")


@struct.dataclass
class MetaGradState:
    """The meta-training carry: meta-parameters, Adam's state, the inner agent, the key."""

    meta_params: Any
    opt_state: Any
    inner_state: Any
    key: jax.Array


class MetaGradRecipe(NamedTuple):
    """`init(key, hparams)`, `run(state, hparams, *, num_updates)` (meta-gradient steps),
    `train(key, hparams)`, `mean(state)` (the meta-parameters); `num_updates`: steps of a run."""

    num_updates: int
    init: Callable[..., MetaGradState]
    run: Callable[..., tuple[MetaGradState, dict[str, jax.Array]]]
    train: Callable[..., tuple[MetaGradState, dict[str, jax.Array]]]
    mean: Callable[[MetaGradState], Any]


_ADAM_STATIC = ("b1", "b2", "eps", "eps_root", "nesterov")


def make_train(
    inner_init: Callable[[jax.Array], Any],
    inner_update: Callable,
    meta_loss: Callable,
    init_params: Any,
    *,
    window: int,
    num_steps: int,
    needs_reset: Callable[[Any], jax.Array],
) -> MetaGradRecipe:
    """Meta-gradient training as a recipe: `num_steps` steps of `make_metagrad_step` in one scan.

    Each step first starts a fresh inner agent (`inner_init(key)`) when `needs_reset(inner_state)`
    (its lifetime cannot fit another window), then takes one Adam step with the traced
    `hparams.meta_lr` on the window loss. Per step the key splits as (carry, step, new agent).

    Returns:
      the recipe; metrics [num_steps]: "meta/loss", "meta/grad_norm", "meta/new_lifetime".
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}.")
    optimizer = optax.inject_hyperparams(optax.adam, static_args=_ADAM_STATIC)(learning_rate=1e-4)
    step, _ = make_metagrad_step(inner_update, meta_loss, window=window, optimizer=optimizer)

    def set_lr(opt_state, lr):
        return opt_state._replace(hyperparams={**opt_state.hyperparams,
                                               "learning_rate": jnp.asarray(lr, jnp.float32)})

    def init(key, hparams):
        k, key = jax.random.split(key)
        opt_state = set_lr(optimizer.init(init_params), hparams.meta_lr)
        return MetaGradState(init_params, opt_state, inner_init(k), key)

    def run(state, hparams, *, num_updates):
        def body(s, _):
            key, k_step, k_new = jax.random.split(s.key, 3)
            reset = needs_reset(s.inner_state)
            inner = jax.lax.cond(reset, lambda: inner_init(k_new), lambda: s.inner_state)
            params, opt_state, inner, m = step(s.meta_params, set_lr(s.opt_state, hparams.meta_lr),
                                               inner, k_step)
            m = {**m, "meta/new_lifetime": reset.astype(jnp.float32)}
            return MetaGradState(params, opt_state, inner, key), m

        return jax.lax.scan(body, state, None, num_updates)

    def train(key, hparams):
        return run(init(key, hparams), hparams, num_updates=num_steps)

    return MetaGradRecipe(num_steps, init, run, train, lambda s: s.meta_params)
