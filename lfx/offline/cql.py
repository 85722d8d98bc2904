"""Conservative Q-learning (CQL), continuous (SAC + CQL(H)) and discrete (DQN + CQL), one module.

Kumar, Zhou, Tucker & Levine 2020, "Conservative Q-Learning for Offline Reinforcement Learning",
arXiv:2006.04779. `Spec.discrete` picks the variant (static).

Continuous (the authors' `d4rl/rlkit/torch/sac/cql.py` as CORL transcribes it,
corl-team/CORL `algorithms/offline/cql.py`, `ContinuousCQL.train` / `_q_loss`): SAC on N = 2
critics without the entropy term in the target (CORL's `backup_entropy=False`), plus per critic
j the importance-sampled CQL(H) penalty of `ensemble_losses.cql_logsumexp_penalty` from K =
`config.num_action_samples` (10) uniform, pi(.|s) and pi(.|s') actions, all evaluated at s:

    y     = r + gamma (1 - d) ( min_j Q'_j(s', a') - backup_entropy * alpha log pi(a'|s') )   (sg)
    D_j   = mean_b clip( T lse_j(s_b) - Q_j(s_b, a_b), clip_min, clip_max )
    L_Q   = sum_j [ mean_b (Q_j(s, a) - y)^2 + w_j ]
    w_j   = cql_alpha * D_j                                        (cql_lagrange = 0, CORL default)
    w_j   = sg(alpha') * cql_alpha * (D_j - target_action_gap)     (cql_lagrange = 1)
    L_a'  = -mean_j alpha' * cql_alpha * (sg(D_j) - target_action_gap),  alpha' = clip(exp(log alpha'), 0, 1e6)
    L_pi  = mean_b ( alpha log pi(a|s) - min_j Q_j(s, a) ),   L_alpha = -mean_b log alpha sg(log pi + H)

Every loss is taken at the parameters before the step and then each is stepped with Adam, as
CORL's `train` computes all losses before its optimiser steps; targets are Polyak-averaged with
tau every `target_update_period` steps. The Lagrange switch is a traced 0/1 float (AgentConfig,
shared by every algorithm, has no CQL field), so a vmap over HParams can compare both variants.

Defaults = CORL's D4RL locomotion configs (`configs/offline/cql/{halfcheetah,hopper,walker2d}/
medium_v2.yaml`): cql_alpha 10 (the authors' README: 5 or 10), actor lr 3e-5, critic lr 3e-4, alpha
lr = actor lr, gamma 0.99, tau 5e-3, K = 10, T = 1, clip +-inf (here +-1e30: the same in float32),
importance sampling on, no Lagrange, 3 hidden layers of 256 (`sac_n.REFERENCE_AGENT_CONFIG` with num_critics=2:
`REFERENCE_AGENT_CONFIG` here). The actor is `sac_n.TanhGaussianActor` with CORL's log-std
range [-20, 2] and offset -1 (CORL learns a multiplier and the offset as scalars initialised at 1
and -1; lfx keeps them fixed), critics `CriticEnsemble` with the EDAC initialisation (CORL:
orthogonal). Unifloral's cql.py differs: one sampled action per state, 10 critics, pi(.|s')
actions evaluated at s', no importance weights; lfx follows the authors' code.

Discrete (the authors' Atari code, aviralkumar2907/CQL `atari/batch_rl/multi_head/
quantile_agent.py` on QR-DQN; lfx takes the DQN form, as d3rlpy's DiscreteCQL):

    y     = r + gamma (1 - d) max_a' Q'(s', a')                                          (sg)
    L     = mean_b huber(Q(s_b, a_b) - y_b) + cql_alpha * mean_b [ lse_a Q(s_b, a) - Q(s_b, a_b) ]

with `DiscreteHParams()`: cql_alpha ("minq_weight") 1.0 (10 % data; 4.0 for 1 %), Adam lr 5e-5 and
eps 3.125e-4 (`configs/quantile.gin`), gamma 0.99, hard target copies (tau 1) every 2000
gradient steps (8000 agent steps at update_period 4). The Q-network is lfx.rl.q_networks.QNetwork.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from lfx.experiment import checks
from lfx.offline import ensemble_losses, sac_n
from lfx.offline.types import AgentConfig, Batch, Spec
from lfx.rl import sac
from lfx.rl.q_networks import QNetwork

REFERENCE_AGENT_CONFIG = AgentConfig(hidden_sizes=(256, 256, 256), num_critics=2, num_action_samples=10)
ALPHA_PRIME_MAX = 1e6  # CORL: torch.clamp(exp(log_alpha_prime), 0, 1e6)
_FINITE = ("finite", lambda v: np.ones_like(v, bool))  # check_ranges adds isfinite
CQL_LOG_STD = {"log_std_min": -20.0, "log_std_max": 2.0, "log_std_offset": -1.0}


@struct.dataclass
class HParams:
    """Traced hyperparameters of CQL (defaults: continuous D4RL locomotion, CORL)."""

    actor_lr: float = 3e-5
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-5  # CORL: the alpha optimiser uses policy_lr
    alpha_prime_lr: float = 3e-4  # CORL: the alpha' optimiser uses qf_lr
    gamma: float = 0.99
    tau: float = 5e-3
    target_update_period: float = 1.0
    cql_alpha: float = 10.0  # CORL cql_alpha / the authors' min_q_weight
    cql_temperature: float = 1.0
    # CORL's -inf / inf (no clipping); +-1e30 clips nothing in float32 and passes the harness, which
    # refuses non-finite hyperparameters before compiling
    cql_clip_diff_min: float = -1e30
    cql_clip_diff_max: float = 1e30
    cql_lagrange: float = 0.0  # 1.0: tune alpha' so that D_j -> target_action_gap
    cql_target_action_gap: float = -1.0
    init_log_alpha_prime: float = 1.0  # CORL: Scalar(1.0) holds log alpha'
    backup_entropy: float = 0.0  # 1.0 adds -alpha log pi(a'|s') to the target
    init_alpha: float = 1.0
    target_entropy_scale: float = 1.0
    adam_eps: float = 1e-8

    def validate(self) -> None:
        """Raises ValueError for concrete values that cannot train (skipped when traced)."""
        flag = ("0 or 1", lambda v: (v == 0) | (v == 1))
        checks.check_ranges(self, {
            "actor_lr": checks.POSITIVE, "critic_lr": checks.POSITIVE, "alpha_lr": checks.POSITIVE,
            "alpha_prime_lr": checks.POSITIVE, "gamma": checks.UNIT, "tau": checks.HALF_OPEN_UNIT,
            "target_update_period": (">= 1", lambda v: v >= 1), "cql_alpha": checks.NON_NEGATIVE,
            "cql_temperature": checks.POSITIVE, "cql_lagrange": flag, "backup_entropy": flag,
            "cql_target_action_gap": _FINITE, "init_log_alpha_prime": _FINITE,
            "init_alpha": checks.POSITIVE, "target_entropy_scale": _FINITE,
            "adam_eps": checks.POSITIVE,
        })
        lo, hi = self.cql_clip_diff_min, self.cql_clip_diff_max
        if not isinstance(lo, jax.core.Tracer) and not isinstance(hi, jax.core.Tracer):
            if not bool(np.all(np.asarray(lo) < np.asarray(hi))) or np.any(np.isnan([lo, hi])):
                raise ValueError(f"cql.HParams.cql_clip_diff_min={lo} must be below cql_clip_diff_max={hi} "
                                 f"(CORL's defaults: -inf, inf).")


@struct.dataclass
class DiscreteHParams(HParams):
    """Discrete CQL's defaults (the authors' Atari gin files, module docstring); the actor/alpha fields are unused."""

    critic_lr: float = 5e-5
    adam_eps: float = 3.125e-4
    cql_alpha: float = 1.0
    tau: float = 1.0
    target_update_period: float = 2000.0


@struct.dataclass
class AgentState:
    """Continuous: all fields. Discrete: `critic_params` is the Q-network's, the actor fields are None."""

    actor_params: Any
    critic_params: Any
    target_params: Any
    log_alpha: Any  # [] (None for discrete)
    log_alpha_prime: Any  # []
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any
    alpha_prime_opt: Any
    step: jax.Array  # [] int32


def make_networks(spec: Spec, config: AgentConfig) -> sac.Networks:
    return sac_n.make_networks(spec, config, **CQL_LOG_STD)


def make_q_network(spec: Spec, config: AgentConfig) -> QNetwork:
    return QNetwork(spec.num_actions, hidden_sizes=tuple(config.hidden_sizes), layer_norm=config.critic_layer_norm)


# ---------------------------------------------------------------------------------------------
# Continuous CQL.


def _sample_repeated(actor: Any, actor_params: Any, obs: jax.Array, num_samples: int,
                     key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """K actions of pi(.|s) per state and their log-densities: [B, K, A], [B, K] (gradient stopped)."""
    rep = jnp.repeat(obs[:, None], num_samples, axis=1)
    pi = actor.apply(actor_params, rep)
    u = pi.sample(key)
    return jax.lax.stop_gradient(jnp.tanh(u)), jax.lax.stop_gradient(pi.log_prob(u))


def critic_loss(
    critic_params: Any, target_params: Any, actor_params: Any, log_alpha_prime: jax.Array, batch: Batch,
    key: jax.Array, alpha: jax.Array, *, networks: sac.Networks, config: AgentConfig, hparams: HParams,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_Q (module docstring); aux: metrics, with "cql/diff" [N] = D_j for the alpha' loss."""
    k_next, k_rand, k_cur, k_nxt = jax.random.split(key, 4)
    obs, act_dim, num = batch.observations, batch.actions.shape[-1], config.num_action_samples
    pi = networks.actor.apply(actor_params, batch.next_observations)
    u = pi.sample(k_next)
    next_q = networks.critic.apply(target_params, batch.next_observations, jnp.tanh(u))
    y = ensemble_losses.sac_n_target(next_q, pi.log_prob(u), batch.rewards, batch.dones, gamma=hparams.gamma,
                                     alpha=hparams.backup_entropy * alpha)
    q = networks.critic.apply(critic_params, obs, batch.actions)  # [N, B]
    td = ensemble_losses.ensemble_td_loss(q, y)

    random_actions = jax.random.uniform(k_rand, (obs.shape[0], num, act_dim), minval=-1.0, maxval=1.0)
    current_actions, current_logp = _sample_repeated(networks.actor, actor_params, obs, num, k_cur)
    next_actions, next_logp = _sample_repeated(networks.actor, actor_params, batch.next_observations, num, k_nxt)
    rep = jnp.repeat(obs[:, None], num, axis=1)
    q_rand = networks.critic.apply(critic_params, rep, random_actions)  # [N, B, K]
    q_cur = networks.critic.apply(critic_params, rep, current_actions)
    q_nxt = networks.critic.apply(critic_params, rep, next_actions)  # pi(.|s') actions at s (module docstring)

    def penalty(q_data, q_random, q_current, q_next):
        return ensemble_losses.cql_logsumexp_penalty(
            q_data, q_random, q_current, current_logp, q_next, next_logp, action_dim=act_dim,
            temperature=hparams.cql_temperature, clip_min=hparams.cql_clip_diff_min,
            clip_max=hparams.cql_clip_diff_max)

    diff = jax.vmap(penalty)(q, q_rand, q_cur, q_nxt)  # [N]
    alpha_prime = jnp.clip(jnp.exp(jax.lax.stop_gradient(log_alpha_prime)), 0.0, ALPHA_PRIME_MAX)
    lagrange = hparams.cql_lagrange
    weighted = jnp.where(lagrange > 0, alpha_prime * hparams.cql_alpha * (diff - hparams.cql_target_action_gap),
                         hparams.cql_alpha * diff)
    loss = td + jnp.sum(weighted)
    return loss, {"train/critic_loss": loss, "train/td_loss": td, "train/cql_diff": jnp.mean(diff),
                  "train/q_mean": jnp.mean(q), "train/q_random_mean": jnp.mean(q_rand),
                  "train/target_mean": jnp.mean(y), "train/alpha_prime": alpha_prime, "cql/diff": diff}


def alpha_prime_loss(log_alpha_prime: jax.Array, diff: jax.Array, hparams: HParams) -> jax.Array:
    """L_a' = -lagrange * mean_j alpha' cql_alpha (sg(D_j) - gap) (CORL: -(l1 + l2) / 2)."""
    alpha_prime = jnp.clip(jnp.exp(log_alpha_prime), 0.0, ALPHA_PRIME_MAX)
    gap = jax.lax.stop_gradient(diff) - hparams.cql_target_action_gap
    return -hparams.cql_lagrange * jnp.mean(alpha_prime * hparams.cql_alpha * gap)


def _update_continuous(agent: AgentState, batch: Batch, key: jax.Array, spec: Spec, config: AgentConfig,
                       hparams: HParams) -> tuple[AgentState, dict[str, jax.Array]]:
    networks = make_networks(spec, config)
    k_actor, k_critic = jax.random.split(key)
    alpha = jnp.exp(agent.log_alpha)
    (a_loss, log_prob), a_grads = jax.value_and_grad(sac.actor_loss, has_aux=True)(
        agent.actor_params, agent.critic_params, batch.observations, k_actor, alpha, networks=networks)
    entropy_target = -hparams.target_entropy_scale * spec.action_dim
    t_loss, t_grad = jax.value_and_grad(ensemble_losses.temperature_loss)(agent.log_alpha, log_prob, entropy_target)
    (_, metrics), c_grads = jax.value_and_grad(critic_loss, has_aux=True)(
        agent.critic_params, agent.target_params, agent.actor_params, agent.log_alpha_prime, batch, k_critic,
        alpha, networks=networks, config=config, hparams=hparams)
    diff = metrics.pop("cql/diff")
    p_loss, p_grad = jax.value_and_grad(alpha_prime_loss)(agent.log_alpha_prime, diff, hparams)

    eps = hparams.adam_eps
    actor_params, actor_opt = sac_n.adam_step(agent.actor_params, a_grads, agent.actor_opt, hparams.actor_lr, eps)
    log_alpha, alpha_opt = sac_n.adam_step(agent.log_alpha, t_grad, agent.alpha_opt, hparams.alpha_lr, eps)
    critic_params, critic_opt = sac_n.adam_step(agent.critic_params, c_grads, agent.critic_opt,
                                                hparams.critic_lr, eps)
    log_alpha_prime, alpha_prime_opt = sac_n.adam_step(agent.log_alpha_prime, p_grad, agent.alpha_prime_opt,
                                                       hparams.alpha_prime_lr, eps)
    step = agent.step + 1
    target_params = sac_n.polyak(agent.target_params, critic_params, step, hparams.tau, hparams.target_update_period)
    metrics.update({"train/actor_loss": a_loss, "train/alpha_loss": t_loss, "train/alpha": alpha,
                    "train/alpha_prime_loss": p_loss, "train/entropy": -jnp.mean(log_prob)})
    return agent.replace(actor_params=actor_params, critic_params=critic_params, target_params=target_params,
                         log_alpha=log_alpha, log_alpha_prime=log_alpha_prime, actor_opt=actor_opt,
                         critic_opt=critic_opt, alpha_opt=alpha_opt, alpha_prime_opt=alpha_prime_opt,
                         step=step), metrics


# ---------------------------------------------------------------------------------------------
# Discrete CQL.


def discrete_loss(q_params: Any, target_params: Any, batch: Batch, *, network: QNetwork,
                  hparams: HParams) -> tuple[jax.Array, dict[str, jax.Array]]:
    """mean_b huber(Q(s, a) - y) + cql_alpha * (mean_b lse_a Q(s, a) - Q(s, a_D)) (module docstring)."""
    next_q = network.apply(target_params, batch.next_observations)  # [B, num_actions]
    y = jax.lax.stop_gradient(batch.rewards + hparams.gamma * (1.0 - batch.dones) * jnp.max(next_q, axis=-1))
    q_all = network.apply(q_params, batch.observations)
    actions = batch.actions.reshape(batch.actions.shape[0]).astype(jnp.int32)
    q = jnp.take_along_axis(q_all, actions[:, None], axis=-1)[:, 0]
    td = jnp.mean(optax.huber_loss(q, y, delta=1.0))
    penalty = ensemble_losses.discrete_cql_penalty(q_all, actions)
    loss = td + hparams.cql_alpha * penalty
    return loss, {"train/critic_loss": loss, "train/td_loss": td, "train/cql_diff": penalty,
                  "train/q_mean": jnp.mean(q), "train/target_mean": jnp.mean(y)}


def _update_discrete(agent: AgentState, batch: Batch, key: jax.Array, spec: Spec, config: AgentConfig,
                     hparams: HParams) -> tuple[AgentState, dict[str, jax.Array]]:
    del key
    network = make_q_network(spec, config)
    (_, metrics), grads = jax.value_and_grad(discrete_loss, has_aux=True)(
        agent.critic_params, agent.target_params, batch, network=network, hparams=hparams)
    critic_params, critic_opt = sac_n.adam_step(agent.critic_params, grads, agent.critic_opt, hparams.critic_lr,
                                                hparams.adam_eps)
    step = agent.step + 1
    target_params = sac_n.polyak(agent.target_params, critic_params, step, hparams.tau, hparams.target_update_period)
    return agent.replace(critic_params=critic_params, target_params=target_params, critic_opt=critic_opt,
                         step=step), metrics


# ---------------------------------------------------------------------------------------------
# The algorithm interface (lfx.offline.types).


def init(key: jax.Array, spec: Spec, config: AgentConfig, hparams: HParams) -> AgentState:
    """Continuous: actor, N critics, targets, log alpha, log alpha'; discrete: a Q-network and its target."""
    config.validate()
    hparams.validate()
    if spec.discrete:
        if spec.num_actions < 2:
            raise ValueError(f"Discrete CQL needs Spec.num_actions >= 2, got {spec.num_actions}.")
        network = make_q_network(spec, config)
        params = network.init(key, jnp.zeros((spec.obs_dim,)))
        return AgentState(actor_params=None, critic_params=params, target_params=params, log_alpha=None,
                          log_alpha_prime=None, actor_opt=None, critic_opt=sac_n.adam_init(params), alpha_opt=None,
                          alpha_prime_opt=None, step=jnp.int32(0))
    networks = make_networks(spec, config)
    k_actor, k_critic = jax.random.split(key)
    obs, action = jnp.zeros((spec.obs_dim,)), jnp.zeros((spec.action_dim,))
    actor_params = networks.actor.init(k_actor, obs)
    critic_params = networks.critic.init(k_critic, obs, action)
    log_alpha = jnp.log(jnp.asarray(hparams.init_alpha, jnp.float32))
    log_alpha_prime = jnp.asarray(hparams.init_log_alpha_prime, jnp.float32)
    return AgentState(actor_params=actor_params, critic_params=critic_params, target_params=critic_params,
                      log_alpha=log_alpha, log_alpha_prime=log_alpha_prime, actor_opt=sac_n.adam_init(actor_params),
                      critic_opt=sac_n.adam_init(critic_params), alpha_opt=sac_n.adam_init(log_alpha),
                      alpha_prime_opt=sac_n.adam_init(log_alpha_prime), step=jnp.int32(0))


def update(agent: AgentState, batch: Batch, key: jax.Array, spec: Spec, config: AgentConfig,
           hparams: HParams) -> tuple[AgentState, dict[str, jax.Array]]:
    """One CQL gradient step (continuous or discrete by `spec.discrete`)."""
    if spec.discrete:
        return _update_discrete(agent, batch, key, spec, config, hparams)
    return _update_continuous(agent, batch, key, spec, config, hparams)


def act(agent: AgentState, obs: jax.Array, spec: Spec, config: AgentConfig) -> jax.Array:
    """Continuous: tanh(mu(s)) in [-1, 1]^A. Discrete: argmax_a Q(s, a) (int32)."""
    if spec.discrete:
        return make_q_network(spec, config).apply(agent.critic_params, obs, method="act")
    return make_networks(spec, config).actor.apply(agent.actor_params, obs, method="act")
