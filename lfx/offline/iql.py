"""IQL: implicit Q-learning, in-sample value learning by expectile regression and advantage-weighted
policy extraction (Kostrikov, Nair & Levine 2021, "Offline Reinforcement Learning with Implicit
Q-Learning", arXiv:2110.06169).

One `update` on a batch (s, a, r, s', d), in the authors' order (ikostrikov/implicit_q_learning
`learner.py` `_update_jit`; losses in `critic.py` `update_v`/`update_q`, `actor.py` `update`):

    V:   L_V  = mean_b |tau - 1(u < 0)| u^2,  u = sg(min_j Q'_j(s, a)) - V(s)      (target critics)
    pi:  w    = min(exp(beta (min_j Q'_j(s, a) - V_new(s))), 100)                 (the V just updated, sg)
         L_pi = -mean_b w_b log pi(a_b | s_b)
    Q:   L_Q  = sum_j mean_b (Q_j(s, a) - y)^2,  y = r + gamma (1 - d) V_new(s')
    Q'  <- (1 - tau_polyak) Q' + tau_polyak Q                                      (every update)

Actor: the authors' `NormalTanhPolicy(state_dependent_std=False, tanh_squash_distribution=False,
log_std_min=-5)`: a Gaussian N(tanh(f(s)), exp(log_std)^2) with a state-independent log std
(`lfx.offline.networks.GaussianActor`); `act` returns its mean tanh(f(s)) (the authors evaluate at
temperature 0). CORL's `algorithms/offline/iql.py` is the same algorithm with log_std_min -20 and
the Q step before the V step; this module follows the authors. Unifloral `algorithms/iql.py` updates
the target before computing V's regression target and decays every learning rate.

Actor learning rate: the authors' cosine decay lr_t = lr 0.5 (1 + cos(pi min(t, T) / T)) with
T = `actor_lr_decay_steps` (their T = 1e6 whatever the run length; 0 here keeps lr constant); Adam on
all three networks, lr 3e-4, (256, 256) ReLU with flax's default initialisation (the authors' is
orthogonal(sqrt 2), `common.py` `default_init`; Unifloral's iql.py uses flax's default)
(`configs/mujoco_config.py`: expectile 0.7, temperature 3.0, tau 0.005, gamma 0.99, no dropout).
The authors also rescale D4RL-locomotion rewards
by 1000 / (max episode return - min episode return) of the dataset (`train_offline.py`
`normalize`): a dataset transform, the recipe's business, not this module's.

Continuous actions only.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from lfx.experiment.checks import HALF_OPEN_UNIT, NON_NEGATIVE, OPEN_UNIT, POSITIVE, UNIT, check_ranges
from lfx.offline import losses
from lfx.offline.networks import CriticEnsemble, GaussianActor, ValueNet
from lfx.offline.td3_bc import adam, check_continuous, polyak
from lfx.offline.types import AgentConfig, Batch, Spec

LOG_STD_MIN = -5.0  # ikostrikov learner.py: NormalTanhPolicy(..., log_std_min=-5.0)
LOG_STD_MAX = 2.0  # ikostrikov policy.py LOG_STD_MAX


@struct.dataclass
class HParams:
    """Traced hyperparameters of IQL (ikostrikov `configs/mujoco_config.py`, `learner.py`)."""

    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    value_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005  # Polyak rate of the target critics
    expectile: float = 0.7  # the expectile tau of L_V
    beta: float = 3.0  # inverse temperature of the AWR weights (the authors' "temperature")
    max_weight: float = 100.0  # AWR weights clipped at this
    actor_lr_decay_steps: float = 1e6  # T of the actor's cosine decay; 0: constant lr

    def validate(self) -> None:
        """Raises ValueError for a concrete value out of range (skipped when traced)."""
        check_ranges(self, {"actor_lr": POSITIVE, "critic_lr": POSITIVE, "value_lr": POSITIVE, "gamma": UNIT,
                            "tau": HALF_OPEN_UNIT, "expectile": OPEN_UNIT, "beta": NON_NEGATIVE,
                            "max_weight": POSITIVE, "actor_lr_decay_steps": NON_NEGATIVE})


@struct.dataclass
class AgentState:
    actor_params: Any
    critic_params: Any
    target_critic_params: Any
    value_params: Any
    actor_opt: Any
    critic_opt: Any
    value_opt: Any
    step: jax.Array  # [] int32


def make_networks(spec: Spec, config: AgentConfig) -> tuple[GaussianActor, CriticEnsemble, ValueNet]:
    hidden = tuple(config.hidden_sizes)
    actor = GaussianActor(spec.action_dim, hidden, layer_norm=config.actor_layer_norm, log_std_min=LOG_STD_MIN,
                          log_std_max=LOG_STD_MAX)
    critic = CriticEnsemble(config.num_critics, hidden, layer_norm=config.critic_layer_norm)
    return actor, critic, ValueNet(hidden)


def cosine_lr(lr, decay_steps):
    """count -> lr 0.5 (1 + cos(pi min(count, T) / T)), T = decay_steps (traced); T = 0: constant lr.

    optax.cosine_decay_schedule(lr, T) for T > 0 (the authors' schedule), written so T may be traced.
    """

    def schedule(count):
        t = jnp.maximum(decay_steps, 1.0)
        frac = jnp.minimum(count.astype(jnp.float32), t) / t
        return jnp.where(decay_steps > 0, lr * 0.5 * (1.0 + jnp.cos(jnp.pi * frac)), lr)

    return schedule


def actor_adam(hparams: HParams) -> optax.GradientTransformation:
    return optax.inject_hyperparams(optax.adam)(learning_rate=cosine_lr(hparams.actor_lr,
                                                                        hparams.actor_lr_decay_steps))


def init(key: jax.Array, spec: Spec, config: AgentConfig, hparams: HParams) -> AgentState:
    """Fresh actor, critics (target = critics) and value net."""
    check_continuous(spec, "IQL")
    actor, critic, value = make_networks(spec, config)
    k_actor, k_critic, k_value = jax.random.split(key, 3)
    obs, action = jnp.zeros((spec.obs_dim,)), jnp.zeros((spec.action_dim,))
    actor_params = actor.init(k_actor, obs)
    critic_params = critic.init(k_critic, obs, action)
    value_params = value.init(k_value, obs)
    return AgentState(
        actor_params=actor_params, critic_params=critic_params, target_critic_params=critic_params,
        value_params=value_params, actor_opt=actor_adam(hparams).init(actor_params),
        critic_opt=adam(hparams.critic_lr).init(critic_params), value_opt=adam(hparams.value_lr).init(value_params),
        step=jnp.int32(0))


def value_loss(value_params: Any, target_q: jax.Array, obs: jax.Array, *, value: ValueNet,
               hparams: HParams) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_V = expectile_loss(sg(target_q) - V(s), tau). target_q: [B] min_j Q'_j(s, a)."""
    v = value.apply(value_params, obs)
    loss = losses.expectile_loss(jax.lax.stop_gradient(target_q) - v, hparams.expectile)
    return loss, {"train/value_loss": loss, "train/v_mean": jnp.mean(v)}


def actor_loss(actor_params: Any, weights: jax.Array, batch: Batch, *, actor: GaussianActor) -> jax.Array:
    """L_pi = -mean_b sg(w_b) log pi(a_b | s_b) (full diagonal-Gaussian log-density over A)."""
    log_prob = actor.apply(actor_params, batch.observations).log_prob(batch.actions)
    return losses.awr_actor_loss(log_prob, weights)


def critic_loss(critic_params: Any, y: jax.Array, batch: Batch, *, critic: CriticEnsemble) -> jax.Array:
    """L_Q = sum_j mean_b (Q_j(s, a) - sg(y))^2."""
    return losses.ensemble_mse(critic.apply(critic_params, batch.observations, batch.actions), y)


def update(
    agent: AgentState, batch: Batch, key: jax.Array, spec: Spec, config: AgentConfig, hparams: HParams,
) -> tuple[AgentState, dict[str, jax.Array]]:
    """One IQL update: V, then the actor (AWR with the new V), then Q (target from the new V), then Q'."""
    del key  # no sampling: the authors' dropout is off for locomotion
    actor, critic, value = make_networks(spec, config)
    target_q = jnp.min(critic.apply(agent.target_critic_params, batch.observations, batch.actions), axis=0)

    grads, metrics = jax.grad(value_loss, has_aux=True)(agent.value_params, target_q, batch.observations,
                                                        value=value, hparams=hparams)
    updates, value_opt = adam(hparams.value_lr).update(grads, agent.value_opt, agent.value_params)
    value_params = optax.apply_updates(agent.value_params, updates)

    adv = target_q - value.apply(value_params, batch.observations)
    weights = losses.awr_weights(adv, hparams.beta, hparams.max_weight)
    a_loss, grads = jax.value_and_grad(actor_loss)(agent.actor_params, weights, batch, actor=actor)
    updates, actor_opt = actor_adam(hparams).update(grads, agent.actor_opt, agent.actor_params)
    actor_params = optax.apply_updates(agent.actor_params, updates)

    y = losses.value_target(batch.rewards, batch.dones, value.apply(value_params, batch.next_observations),
                            hparams.gamma)
    q_loss, grads = jax.value_and_grad(critic_loss)(agent.critic_params, y, batch, critic=critic)
    updates, critic_opt = adam(hparams.critic_lr).update(grads, agent.critic_opt, agent.critic_params)
    critic_params = optax.apply_updates(agent.critic_params, updates)

    agent = AgentState(
        actor_params=actor_params, critic_params=critic_params,
        target_critic_params=polyak(critic_params, agent.target_critic_params, hparams.tau),
        value_params=value_params, actor_opt=actor_opt, critic_opt=critic_opt, value_opt=value_opt,
        step=agent.step + 1)
    return agent, {**metrics, "train/actor_loss": a_loss, "train/critic_loss": q_loss,
                   "train/target_q_mean": jnp.mean(target_q), "train/adv_mean": jnp.mean(adv),
                   "train/awr_weight_mean": jnp.mean(weights)}


def act(agent: AgentState, obs: jax.Array, spec: Spec, config: AgentConfig) -> jax.Array:
    """The policy's mean tanh(f(s)) in [-1, 1]^A, for one observation [D] or a batch [..., D]."""
    actor, _, _ = make_networks(spec, config)
    return actor.apply(agent.actor_params, obs).mode()
