"""Behaviour cloning: regress the dataset's action on the state (Pomerleau 1991; the BC baseline of
D4RL, Fu et al. 2020, arXiv:2004.07219).

    continuous: L = mean_{b,k} (pi(s_b)_k - a_{b,k})^2,  pi(s) = tanh(f(s)) in [-1, 1]^A
    discrete:   L = -mean_b log softmax(f(s_b))[a_b],   act = argmax_k f(s)_k

As Unifloral `algorithms/bc.py` (deterministic tanh actor, MSE averaged over batch and action
dimensions) and CORL `algorithms/offline/any_percent_bc.py` (same loss; `frac=1.0` is plain BC):
Adam lr 3e-4, batch 256, (256, 256) ReLU. Losses: `lfx.offline.losses.bc_loss`, `bc_discrete_loss`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from lfx.experiment.checks import POSITIVE, check_ranges
from lfx.offline import losses
from lfx.offline.networks import MLP, DeterministicActor
from lfx.offline.types import AgentConfig, Batch, Spec


@struct.dataclass
class HParams:
    """Traced hyperparameters of BC (Unifloral `bc.py` `Args.lr`)."""

    lr: float = 3e-4

    def validate(self) -> None:
        """Raises ValueError for a concrete value out of range (skipped when traced)."""
        check_ranges(self, {"lr": POSITIVE})


@struct.dataclass
class AgentState:
    actor_params: Any
    actor_opt: Any
    step: jax.Array  # [] int32


def make_actor(spec: Spec, config: AgentConfig):
    """A deterministic tanh actor [..., D] -> [..., A], or a logits MLP [..., D] -> [..., K] when discrete."""
    if spec.discrete:
        return MLP(spec.num_actions, tuple(config.hidden_sizes), layer_norm=config.actor_layer_norm)
    return DeterministicActor(spec.action_dim, tuple(config.hidden_sizes), layer_norm=config.actor_layer_norm)


def adam(lr) -> optax.GradientTransformation:
    return optax.inject_hyperparams(optax.adam)(learning_rate=lr)


def init(key: jax.Array, spec: Spec, config: AgentConfig, hparams: HParams) -> AgentState:
    if spec.discrete and spec.num_actions < 2:
        raise ValueError(f"A discrete Spec needs num_actions >= 2, got {spec.num_actions}.")
    params = make_actor(spec, config).init(key, jnp.zeros((spec.obs_dim,)))
    return AgentState(actor_params=params, actor_opt=adam(hparams.lr).init(params), step=jnp.int32(0))


def loss(actor_params: Any, batch: Batch, *, spec: Spec, config: AgentConfig) -> jax.Array:
    """The BC loss of the module docstring on one batch. Returns []."""
    out = make_actor(spec, config).apply(actor_params, batch.observations)
    if spec.discrete:
        return losses.bc_discrete_loss(out, batch.actions)
    return losses.bc_loss(out, batch.actions)


def update(
    agent: AgentState, batch: Batch, key: jax.Array, spec: Spec, config: AgentConfig, hparams: HParams,
) -> tuple[AgentState, dict[str, jax.Array]]:
    """One Adam step on the BC loss (`key` unused: BC is deterministic)."""
    del key
    value, grads = jax.value_and_grad(loss)(agent.actor_params, batch, spec=spec, config=config)
    updates, opt = adam(hparams.lr).update(grads, agent.actor_opt, agent.actor_params)
    agent = agent.replace(actor_params=optax.apply_updates(agent.actor_params, updates), actor_opt=opt,
                          step=agent.step + 1)
    return agent, {"train/actor_loss": value, "train/bc_loss": value}


def act(agent: AgentState, obs: jax.Array, spec: Spec, config: AgentConfig) -> jax.Array:
    """pi(s) in [-1, 1]^A, or argmax_k of the logits (int32) when discrete; obs [D] or [..., D]."""
    out = make_actor(spec, config).apply(agent.actor_params, obs)
    if spec.discrete:
        return jnp.argmax(out, axis=-1).astype(jnp.int32)
    return out
