"""TD3+BC on observation histories, with the bisimulation loss on the history representation (Hong,
Dragan & Levine 2024, "Offline RL with Observation Histories", arXiv:2310.20663, on top of TD3+BC,
Fujimoto & Gu 2021, arXiv:2106.06860).

The agent sees a window h of the last H (masked) observations, [H, D'] (`lfx.offline.histories`). A
history encoder phi (GRU or MLP, `histories.HistoryEncoder`) is part of the critic's parameters; its
Polyak copy phi' is part of the target critic's. One `update` on a batch (h, a, r, h', d):

    z = phi(h), z' = phi'(h')                                            (z' gradient-free: a target)
    a~' = clip(pi'(z') + clip(sigma eps, -c, c), -1, 1)
    y   = r + gamma (1 - d) min_j Q'_j(z', a~')
    L_Q = sum_j mean_b (Q_j(z, a) - sg(y))^2 + bisim_weight L_bisim(z, z[perm], r, r[perm], z', z'[perm])
          (one Adam step on encoder + critics; perm a random permutation of the batch pairs the rows)
    every `policy_freq`-th update:
      L_pi = -lambda mean_b Q_1(sg(z), pi(sg(z))) + mean (pi(sg(z)) - a)^2   (the actor does not move phi)
      then pi' <- Polyak pi, (phi', Q') <- Polyak (phi, Q)

`bisim_weight = 0` is plain TD3+BC on histories (the encoder trained by the TD loss alone), so one vmap
over HParams compares with and without the loss. The update is td3_bc's `critic_then_delayed_actor`
with these two losses; the state is td3_bc's `AgentState` (critic_params = {encoder, critics}).

Static settings: `HistoryAgentConfig` (AgentConfig + history_length, encoder, latent_dim,
encoder_hidden). `Spec.obs_dim` is the per-frame size D' (len(keep) + 1 with the valid flag).
Continuous actions only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from lfx.experiment.checks import HALF_OPEN_UNIT, NON_NEGATIVE, POSITIVE, UNIT, check_ranges
from lfx.offline import losses, td3_bc
from lfx.offline.histories import ENCODERS, HistoryEncoder, bisimulation_loss
from lfx.offline.networks import CriticEnsemble, DeterministicActor
from lfx.offline.td3_bc import ACTOR_METRICS, AgentState, smoothed_target_action
from lfx.offline.types import AgentConfig, Batch, Spec

__all__ = ["AgentState", "HParams", "HistoryAgentConfig", "act", "init", "update"]


@struct.dataclass
class HParams:
    """Traced hyperparameters: TD3+BC's (same defaults) and the bisimulation loss's weight."""

    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    alpha: float = 2.5
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    bisim_weight: float = 0.0  # 0: without the bisimulation loss

    def validate(self) -> None:
        """Raises ValueError for a concrete value out of range (skipped when traced)."""
        check_ranges(self, {"actor_lr": POSITIVE, "critic_lr": POSITIVE, "gamma": UNIT, "tau": HALF_OPEN_UNIT,
                            "alpha": NON_NEGATIVE, "policy_noise": NON_NEGATIVE, "noise_clip": NON_NEGATIVE,
                            "bisim_weight": NON_NEGATIVE})


@dataclasses.dataclass(frozen=True)
class HistoryAgentConfig(AgentConfig):
    """AgentConfig plus the history encoder: window length H, "gru" or "mlp", widths."""

    history_length: int = 4
    encoder: str = "gru"
    latent_dim: int = 64
    encoder_hidden: int = 128

    def validate(self) -> None:
        super().validate()
        if self.history_length < 1:
            raise ValueError(f"agent.history_length must be >= 1, got {self.history_length}.")
        if self.encoder not in ENCODERS:
            raise ValueError(f"agent.encoder must be one of {ENCODERS}, got {self.encoder!r}.")
        if self.latent_dim < 1 or self.encoder_hidden < 1:
            raise ValueError(f"agent.latent_dim and encoder_hidden must be positive, got {self.latent_dim}, "
                             f"{self.encoder_hidden}.")


class HistoryCritic(nn.Module):
    """phi and the critic ensemble on it: `encode(h) -> z`, `q_values(z, a) -> [N, ...]`, `(h, a) -> Q`."""

    num_critics: int = 2
    hidden_sizes: Sequence[int] = (256, 256)
    layer_norm: bool = False
    latent_dim: int = 64
    encoder_kind: str = "gru"
    encoder_hidden: int = 128

    def setup(self):
        self.encoder = HistoryEncoder(self.latent_dim, self.encoder_kind, self.encoder_hidden)
        self.q = CriticEnsemble(self.num_critics, tuple(self.hidden_sizes), layer_norm=self.layer_norm)

    def __call__(self, h, action):
        return self.q(self.encoder(h), action)

    def encode(self, h):
        return self.encoder(h)

    def q_values(self, z, action):
        return self.q(z, action)


def make_networks(spec: Spec, config: HistoryAgentConfig) -> tuple[DeterministicActor, HistoryCritic]:
    actor = DeterministicActor(spec.action_dim, tuple(config.hidden_sizes), layer_norm=config.actor_layer_norm)
    critic = HistoryCritic(config.num_critics, tuple(config.hidden_sizes), config.critic_layer_norm,
                           config.latent_dim, config.encoder, config.encoder_hidden)
    return actor, critic


def init(key: jax.Array, spec: Spec, config: HistoryAgentConfig, hparams: HParams) -> AgentState:
    """Fresh actor, encoder and critics; targets start equal to them."""
    td3_bc.check_continuous(spec, "TD3+BC (histories)")
    actor, critic = make_networks(spec, config)
    k_actor, k_critic = jax.random.split(key)
    h, action = jnp.zeros((config.history_length, spec.obs_dim)), jnp.zeros((spec.action_dim,))
    critic_params = critic.init(k_critic, h, action)
    actor_params = actor.init(k_actor, jnp.zeros((config.latent_dim,)))
    return td3_bc.fresh_agent(actor_params, critic_params, hparams)


def critic_loss(
    critic_params: Any, agent: AgentState, batch: Batch, key: jax.Array, *, actor: DeterministicActor,
    critic: HistoryCritic, hparams: HParams,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_Q (TD3+BC's, on z = phi(h)) + bisim_weight L_bisim (module docstring); z' from the target phi'."""
    k_noise, k_perm = jax.random.split(key)
    next_z = critic.apply(agent.target_critic_params, batch.next_observations, method="encode")
    next_action = smoothed_target_action(k_noise, actor.apply(agent.target_actor_params, next_z),
                                         hparams.policy_noise, hparams.noise_clip)
    next_q = critic.apply(agent.target_critic_params, next_z, next_action, method="q_values")  # [N, B]
    y = losses.clipped_double_q_target(next_q, batch.rewards, batch.dones, hparams.gamma)
    z = critic.apply(critic_params, batch.observations, method="encode")
    q = critic.apply(critic_params, z, batch.actions, method="q_values")
    td_loss = losses.ensemble_mse(q, y)
    perm = jax.random.permutation(k_perm, batch.rewards.shape[0])
    bisim, bisim_metrics = bisimulation_loss(z, z[perm], batch.rewards, batch.rewards[perm], next_z, next_z[perm],
                                             gamma=hparams.gamma)
    loss = td_loss + hparams.bisim_weight * bisim
    return loss, {"train/critic_loss": td_loss, "train/q_mean": jnp.mean(q), "train/target_mean": jnp.mean(y),
                  **bisim_metrics}


def actor_loss(
    actor_params: Any, critic_params: Any, batch: Batch, *, actor: DeterministicActor, critic: HistoryCritic,
    hparams: HParams,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """TD3+BC's L_pi on sg(phi(h)): the actor's gradient does not reach the encoder."""
    z = jax.lax.stop_gradient(critic.apply(critic_params, batch.observations, method="encode"))
    pi_action = actor.apply(actor_params, z)
    q = critic.apply(critic_params, z, pi_action, method="q_values")[0]
    loss = losses.td3_bc_actor_loss(q, pi_action, batch.actions, hparams.alpha)
    metrics = {"train/actor_loss": loss, "train/bc_loss": losses.bc_loss(pi_action, batch.actions),
               "train/lambda": losses.q_normalizer(q, hparams.alpha)}
    assert tuple(metrics) == ACTOR_METRICS
    return loss, metrics


def update(
    agent: AgentState, batch: Batch, key: jax.Array, spec: Spec, config: HistoryAgentConfig, hparams: HParams,
) -> tuple[AgentState, dict[str, jax.Array]]:
    """One update: an encoder + critic step, and every `policy_freq`-th update an actor step + targets.

    batch.observations / next_observations: [B, H, D'] history windows.
    """
    return td3_bc.critic_then_delayed_actor(agent, batch, key, hparams, networks=make_networks(spec, config),
                                            critic_loss_fn=critic_loss, actor_loss_fn=actor_loss,
                                            do_actor=(agent.step + 1) % config.policy_freq == 0)


def act(agent: AgentState, obs: jax.Array, spec: Spec, config: HistoryAgentConfig) -> jax.Array:
    """The deterministic action pi(phi(h)) in [-1, 1]^A for one window [H, D'] or a batch [..., H, D']."""
    actor, critic = make_networks(spec, config)
    return actor.apply(agent.actor_params, critic.apply(agent.critic_params, obs, method="encode"))
