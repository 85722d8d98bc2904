"""A tiny inner problem: a softmax policy on a K-armed Gaussian bandit trained by a pluggable objective.

Small enough for unit tests of the outer estimators (ES and meta-gradients), and shaped like the PPO
recipe: each update samples a batch of B actions from π_old = softmax(θ), computes normalised
advantages A = (R - mean R) / std R, then takes E plain gradient steps on
`objective(φ, log π_θ(a) - log π_old(a), A, clip_eps, progress=n/N, lifetime=N)`, so the ratio leaves
1 after the first step and the drift matters. The meta-objective is the expected reward of the final
policy, Σ_k softmax(θ_N)_k μ_k, which is differentiable in φ (sampled actions are fixed by the key).

`(init, update)` expose one update for truncated meta-gradients; `make_train` wraps a whole lifetime
with the recipe's signature `train(key, hparams, objective_params) -> (state, metrics)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class BanditConfig:
    """Static shape of the bandit problem (arm means are drawn from `task_seed`)."""

    num_arms: int = 5
    batch_size: int = 32
    num_updates: int = 20
    num_epochs: int = 4
    learning_rate: float = 0.5
    clip_eps: float = 0.2
    reward_noise: float = 1.0
    task_seed: int = 0

    def __post_init__(self):
        if min(self.num_arms, self.batch_size, self.num_updates, self.num_epochs) < 1:
            raise ValueError("num_arms, batch_size, num_updates and num_epochs must be >= 1.")


@flax.struct.dataclass
class BanditState:
    logits: jax.Array  # [K]
    arm_means: jax.Array  # [K]
    update: jax.Array  # int scalar


def init(key: jax.Array, config: BanditConfig) -> BanditState:
    """Uniform policy; arm means ~ N(0, 1) from the task seed (the key only picks nothing here)."""
    del key
    means = jax.random.normal(jax.random.key(config.task_seed), (config.num_arms,))
    return BanditState(jnp.zeros(config.num_arms), means, jnp.zeros((), jnp.int32))


def expected_reward(state: BanditState) -> jax.Array:
    """Σ_k π_k μ_k under the current policy (scalar)."""
    return jnp.sum(jax.nn.softmax(state.logits) * state.arm_means)


def update(
    objective: Callable,
    objective_params: Any,
    state: BanditState,
    key: jax.Array,
    *,
    config: BanditConfig,
) -> BanditState:
    """One agent update (a batch, E gradient steps on the objective)."""
    k_a, k_r = jax.random.split(key)
    # Not stop-gradiented: it is constant for the inner step (a closure) but meta-gradients flow
    # through it into earlier updates.
    old_logp = jax.nn.log_softmax(state.logits)
    actions = jax.random.categorical(k_a, old_logp, shape=(config.batch_size,))
    rewards = state.arm_means[actions] + config.reward_noise * jax.random.normal(
        k_r, (config.batch_size,)
    )
    adv = (rewards - rewards.mean()) / (rewards.std() + 1e-8)
    progress = state.update / config.num_updates
    lifetime = jnp.asarray(config.num_updates, adv.dtype)

    def loss(logits):
        log_ratio = jax.nn.log_softmax(logits)[actions] - old_logp[actions]
        return objective(
            objective_params,
            log_ratio,
            adv,
            clip_eps=config.clip_eps,
            progress=progress,
            lifetime=lifetime,
        )[0]

    def epoch(logits, _):
        return logits - config.learning_rate * jax.grad(loss)(logits), None

    logits, _ = jax.lax.scan(epoch, state.logits, None, length=config.num_epochs)
    return state.replace(logits=logits, update=state.update + 1)


def make_train(config: BanditConfig, objective: Callable) -> Callable:
    """A whole lifetime: train(key, hparams, objective_params) -> (state, metrics [N]).

    `hparams` is accepted for signature parity with `lfx.rl.ppo.make_train` and ignored.
    metrics["train/episode_return"][n] is the expected reward after update n.
    """

    def train(key, hparams, objective_params):
        del hparams
        state = init(key, config)

        def body(s, k):
            s = update(objective, objective_params, s, k, config=config)
            return s, expected_reward(s)

        state, values = jax.lax.scan(body, state, jax.random.split(key, config.num_updates))
        return state, {"train/episode_return": values}

    return train
