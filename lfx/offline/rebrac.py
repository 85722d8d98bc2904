"""ReBRAC: TD3+BC revisited with LayerNorm critics, a BC penalty in the critic's target and decoupled
penalties (Tarasov et al. 2023, "Revisiting the Minimalist Approach to Offline Reinforcement
Learning", arXiv:2305.09836).

One `update` on a batch (s, a, r, s', a', d), a' the dataset's next action (`Batch.next_actions`), as
the authors' code (CORL `algorithms/offline/rebrac.py`, copied from tinkoff-ai/ReBRAC: `update_critic`,
`update_actor`, `update_td3`, the `delayed_updates` mask):

    a~' = clip(pi'(s') + clip(sigma eps, -c, c), -1, 1)
    y   = r + gamma (1 - d) [ min_j Q'_j(s', a~') - beta_critic ||a~' - a'||^2 ]
    L_Q = sum_j mean_b (Q_j(s, a) - sg(y))^2                              (one Adam step on the critics)
    every update with step % policy_freq == 0 (steps 0, 2, 4, ...: CORL's mask arange % policy_freq == 0):
      L_pi = mean_b [ beta_actor ||pi(s) - a||^2 - lambda min_j Q_j(s, pi(s)) ],  lambda = 1 / sg(mean_b |min_j Q_j|)
      (one Adam step, against the critics just updated), then Polyak targets pi', Q' with tau.

||.||^2 sums over action dimensions. Losses: `lfx.offline.losses.rebrac_critic_target`, `ensemble_mse`,
`rebrac_actor_loss`. Networks: `DeterministicActor` and `CriticEnsemble` with `initializer="rebrac"`
(CORL's EDAC-style init: hidden kernels U(+-1/sqrt(fan_in)), biases 0.1, heads U(+-1e-3) actor /
U(+-3e-3) critic), LayerNorm after each hidden ReLU where `AgentConfig.critic_layer_norm` /
`actor_layer_norm` say so.

The paper's settings, which are static (the recipe's batch size and `AgentConfig`), not HParams:
batch 1024, three hidden layers of 256 in actor and critics, LayerNorm in the critics only
(`PAPER_AGENT_CONFIG`), 1M updates, no state or reward normalisation (CORL `Config`).
HParams defaults: CORL `Config` (actor/critic lr 1e-3, gamma 0.99, tau 5e-3, noise 0.2, clip 0.5) with
the halfcheetah-medium-v2 penalties (CORL `configs/offline/rebrac/halfcheetah/medium_v2.yaml`, also
Unifloral `algorithms/rebrac.py` `Args`). Per-task (beta_actor, beta_critic) of the authors' configs
(`configs/offline/rebrac/<env>/<level>_v2.yaml`), `PAPER_PENALTIES`:

    halfcheetah-medium (0.001, 0.01)   halfcheetah-medium-replay (0.01, 0.001)
    hopper-medium      (0.01, 0.01)    hopper-medium-replay      (0.05, 0.5)
    walker2d-medium    (0.05, 0.1)     walker2d-medium-replay    (0.05, 0.01)

Metrics as `lfx.offline.td3_bc`: the actor's are those of the latest actor step (`AgentState.actor_metrics`),
"train/actor_updated" is 1 where this update stepped the actor.
Continuous actions only.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from lfx.experiment.checks import HALF_OPEN_UNIT, NON_NEGATIVE, POSITIVE, UNIT, check_ranges
from lfx.offline import losses
from lfx.offline.networks import CriticEnsemble, DeterministicActor
from lfx.offline.td3_bc import (
    AgentState,
    check_continuous,
    critic_then_delayed_actor,
    init_networks,
    smoothed_target_action,
)
from lfx.offline.types import AgentConfig, Batch, Spec

PAPER_AGENT_CONFIG = AgentConfig(hidden_sizes=(256, 256, 256), num_critics=2, critic_layer_norm=True,
                                 actor_layer_norm=False, policy_freq=2)
PAPER_BATCH_SIZE = 1024
PAPER_PENALTIES = {  # (beta_actor, beta_critic), CORL configs/offline/rebrac/<env>/<level>_v2.yaml
    "halfcheetah-medium": (0.001, 0.01), "halfcheetah-medium-replay": (0.01, 0.001),
    "hopper-medium": (0.01, 0.01), "hopper-medium-replay": (0.05, 0.5),
    "walker2d-medium": (0.05, 0.1), "walker2d-medium-replay": (0.05, 0.01),
}


@struct.dataclass
class HParams:
    """Traced hyperparameters of ReBRAC (module docstring for the sources)."""

    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    gamma: float = 0.99
    tau: float = 5e-3
    beta_actor: float = 0.001  # CORL actor_bc_coef
    beta_critic: float = 0.01  # CORL critic_bc_coef
    policy_noise: float = 0.2
    noise_clip: float = 0.5

    def validate(self) -> None:
        """Raises ValueError for a concrete value out of range (skipped when traced)."""
        check_ranges(self, {"actor_lr": POSITIVE, "critic_lr": POSITIVE, "gamma": UNIT, "tau": HALF_OPEN_UNIT,
                            "beta_actor": NON_NEGATIVE, "beta_critic": NON_NEGATIVE,
                            "policy_noise": NON_NEGATIVE, "noise_clip": NON_NEGATIVE})


def make_networks(spec: Spec, config: AgentConfig) -> tuple[DeterministicActor, CriticEnsemble]:
    hidden = tuple(config.hidden_sizes)
    actor = DeterministicActor(spec.action_dim, hidden, layer_norm=config.actor_layer_norm, initializer="rebrac",
                               head_scale=1e-3)
    critic = CriticEnsemble(config.num_critics, hidden, layer_norm=config.critic_layer_norm, initializer="rebrac",
                            head_scale=3e-3)
    return actor, critic


def init(key: jax.Array, spec: Spec, config: AgentConfig, hparams: HParams) -> AgentState:
    """Fresh actor and critics; targets start equal to them (CORL inits target with the same key)."""
    check_continuous(spec, "ReBRAC")
    return init_networks(key, spec, make_networks(spec, config), hparams)


def critic_loss(
    critic_params: Any, agent: AgentState, batch: Batch, key: jax.Array, *, actor: DeterministicActor,
    critic: CriticEnsemble, hparams: HParams,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_Q = sum_j mean_b (Q_j(s, a) - y)^2, y with the critic's BC penalty (module docstring)."""
    next_action = actor.apply(agent.target_actor_params, batch.next_observations)
    next_action = smoothed_target_action(key, next_action, hparams.policy_noise, hparams.noise_clip)
    next_q = critic.apply(agent.target_critic_params, batch.next_observations, next_action)  # [N, B]
    y = losses.rebrac_critic_target(next_q, next_action, batch.next_actions, batch.rewards, batch.dones,
                                    hparams.gamma, hparams.beta_critic)
    q = critic.apply(critic_params, batch.observations, batch.actions)  # [N, B]
    loss = losses.ensemble_mse(q, y)
    penalty = jnp.mean(jnp.sum(jnp.square(next_action - batch.next_actions), axis=-1))
    return loss, {"train/critic_loss": loss, "train/q_mean": jnp.mean(q), "train/target_mean": jnp.mean(y),
                  "train/critic_bc_penalty": penalty}


def actor_loss(
    actor_params: Any, critic_params: Any, batch: Batch, *, actor: DeterministicActor, critic: CriticEnsemble,
    hparams: HParams,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_pi = mean [beta_actor ||pi(s) - a||^2 - lambda min_j Q_j(s, pi(s))], lambda = 1 / sg(mean |min Q|)."""
    pi_action = actor.apply(actor_params, batch.observations)
    q = jnp.min(critic.apply(critic_params, batch.observations, pi_action), axis=0)
    loss = losses.rebrac_actor_loss(q, pi_action, batch.actions, hparams.beta_actor)
    penalty = jnp.mean(jnp.sum(jnp.square(pi_action - batch.actions), axis=-1))
    return loss, {"train/actor_loss": loss, "train/bc_loss": penalty, "train/lambda": losses.q_normalizer(q, 1.0)}


def update(
    agent: AgentState, batch: Batch, key: jax.Array, spec: Spec, config: AgentConfig, hparams: HParams,
) -> tuple[AgentState, dict[str, jax.Array]]:
    """One ReBRAC update: a critic step, and on every `policy_freq`-th (from step 0) an actor step + targets."""
    return critic_then_delayed_actor(agent, batch, key, hparams, networks=make_networks(spec, config),
                                     critic_loss_fn=critic_loss, actor_loss_fn=actor_loss,
                                     do_actor=agent.step % config.policy_freq == 0)


def act(agent: AgentState, obs: jax.Array, spec: Spec, config: AgentConfig) -> jax.Array:
    """The deterministic action pi(s) in [-1, 1]^A for one observation [D] or a batch [..., D]."""
    actor, _ = make_networks(spec, config)
    return actor.apply(agent.actor_params, obs)
