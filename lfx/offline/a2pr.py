"""A2PR: TD3+BC with a value net, an advantage-filtered VAE behaviour model and an advantage-guided,
adaptively weighted BC term (Liu, Li, Lan, Gao, Pan & Xu 2024, "Adaptive Advantage-guided Policy
Regularization for Offline Reinforcement Learning", ICML, arXiv:2405.19909).

One `update` on a batch (s, a, r, s', d), in the order of the authors' code (ltlhuuu/A2PR `A2PR.py`
`A2PR.train`; networks in `core/network/actor.py` `A2PR_Actor`, `core/network/critic.py` `Critic`,
`Value`; the VAE is `A2PR.py` `VAE`):

    Q:   a~' = clip(pi'(s') + clip(sigma eps, -c, c), -1, 1),  y = r + gamma (1 - d) min_j Q'_j(s', a~')
         L_Q = sum_j mean_b (Q_j(s, a) - sg(y))^2                           (TD3+BC's critic step)
    V:   t   = sg(min(y, r + gamma (1 - d) min_j Q_j(s', a~')))             (Q: the critics just updated)
         L_V = mean_b (V(s) - t)^2                                          (value_expectile = 0.5)
    VAE: L_VAE = mean_{b,k} vae_weight 1(Q_1(s, a) > V_old(s)) (D(s, z) - a)^2 + kl_weight KL(E(s, a) || N(0, I))
    every `policy_freq`-th update ((step + 1) % policy_freq == 0, as TD3+BC):
      a~_pi = the new VAE's reconstruction of pi(s) (encoded with E(s, pi(s)), one z sample)
      A(s, x) = Q_1(s, x) - V_old(s);  a^ = a~_pi if A(s, a~_pi) >= A(s, a) else a
      L_pi = -lambda mean_b Q_1(s, pi(s)) + mean_{b,k} mask (1(A(s, a~_pi) >= 0) + 1(A(s, a) > 0)) (pi(s) - a^)^2
      lambda = alpha / sg(mean_b |Q_1(s, pi(s))|); one Adam step, then Polyak pi', Q' with tau.

V_old is V before its own step this update (the authors reuse the `value` tensor computed before
`value_optimizer.step()`). Losses: `lfx.offline.losses` (`a2pr_value_target`, `a2pr_vae_loss`,
`a2pr_actor_loss`, and TD3+BC's critic loss); the VAE is `lfx.offline.networks.ConditionalVAE`.

What the code does that a reading of the paper may not suggest:
  * V is fitted by plain MSE (`F.mse_loss(value, t_Q)`) to a TD target, not by expectile regression
    against Q(s, a); the expectile loss in `Value.loss` (0.8) is never called. `value_expectile`
    (default 0.5 = the code) replaces the MSE by 2 * `losses.expectile_loss`, so 0.5 is exactly the MSE.
  * The VAE takes no advantage as input: it is a state-conditional VAE whose reconstruction term keeps
    only the dataset actions with Q_1(s, a) > V(s) ("advantage-guided" by the filter).
  * `mask` is not a threshold: it scales the BC term, once for each of the two candidate actions with
    non-negative advantage (weight 0, mask or 2 mask per state).
  * The BC target a~_pi is not stop-gradiented: where it is chosen, pi's gradient also flows through
    the VAE (its parameters are not stepped by the actor's optimiser).

Networks (flax's default initialisation, as `lfx.offline.td3_bc`; the authors' is PyTorch's): actor,
twin critics and V use `AgentConfig.hidden_sizes` (the authors: actor (256, 256, 256), critics and V
(256, 256, 256, 256), which one `hidden_sizes` cannot express; `PAPER_AGENT_CONFIG` gives all three
nets (256, 256, 256)); the VAE has (750, 750) hidden units and a latent of 2 A (`VAE_HIDDEN`,
`LATENT_PER_ACTION_DIM`). Optimisers: Adam, lr 3e-4 for actor, critics and V, 1e-3 (PyTorch's default)
for the VAE. Batch 256, states normalised by the dataset's mean/std (the recipe's `normalize_obs`;
the authors' `--normalize` is on), rewards unscaled.

HParams defaults: the argparse defaults of the authors' `utils/config.py` (alpha 2.5, vae_weight 1.0,
mask 0.5, discount 0.99, policy_noise 0.2, noise_clip 0.5, tau 0.005; its default env is
walker2d-medium-replay-v2, whose README command uses other values). Per-task settings of the
authors' README commands (every version of README.md; `PAPER_HPARAMS`):

    task                           alpha  vae_weight  mask   discount
    halfcheetah-medium-v2          40.0   1.0         1.0    0.99
    halfcheetah-medium-replay-v2   40.0   1.5         0.8    0.995
    halfcheetah-medium-expert-v2   40.0   1.0         10.0   0.99     (15.0 also listed)
    hopper-random-v2               2.5    1.5         1.5    0.995
    hopper-medium-v2               2.5    1.0         0.4    0.995
    hopper-medium-replay-v2        2.5    1.5         0.5    0.99
    hopper-medium-expert-v2        2.5    1.0         4.0    0.99
    walker2d-medium-v2             2.5    1.5         1.0    0.99
    walker2d-medium-replay-v2      2.5    1.5         1.2    0.995    (1.5 also listed)
    walker2d-medium-expert-v2      2.5    1.0         0.8    0.99     (0.995 also listed)

Metrics: the critic's, V's and the VAE's of this update ("train/adv_positive_frac": the fraction of
the batch with Q_1(s, a) > V_old(s), the rows the VAE learns from); the actor's ("train/actor_loss" = L_pi,
"train/bc_loss", "train/lambda", "train/vae_target_frac": fraction of states whose BC target is the
VAE's action, "train/bc_weight_mean") of the latest actor step, zeros before the first, and
"train/actor_updated" (1 where this update stepped the actor), as `lfx.offline.td3_bc`.

Continuous actions only.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from lfx.experiment.checks import HALF_OPEN_UNIT, NON_NEGATIVE, OPEN_UNIT, POSITIVE, UNIT, check_ranges
from lfx.offline import losses, td3_bc
from lfx.offline.networks import ConditionalVAE, CriticEnsemble, DeterministicActor, ValueNet
from lfx.offline.td3_bc import adam, check_continuous, delayed, polyak, smoothed_target_action
from lfx.offline.types import AgentConfig, Batch, Spec

VAE_HIDDEN = (750, 750)  # A2PR.py VAE: e1, e2 and d1, d2 are 750 wide
LATENT_PER_ACTION_DIM = 2  # A2PR.py: latent_dim = action_dim * 2
PAPER_AGENT_CONFIG = AgentConfig(hidden_sizes=(256, 256, 256), num_critics=2, policy_freq=2)
PAPER_HPARAMS = {  # (alpha, vae_weight, mask, discount), the authors' README commands
    "halfcheetah-medium-v2": (40.0, 1.0, 1.0, 0.99),
    "halfcheetah-medium-replay-v2": (40.0, 1.5, 0.8, 0.995),
    "halfcheetah-medium-expert-v2": (40.0, 1.0, 10.0, 0.99),
    "hopper-random-v2": (2.5, 1.5, 1.5, 0.995),
    "hopper-medium-v2": (2.5, 1.0, 0.4, 0.995),
    "hopper-medium-replay-v2": (2.5, 1.5, 0.5, 0.99),
    "hopper-medium-expert-v2": (2.5, 1.0, 4.0, 0.99),
    "walker2d-medium-v2": (2.5, 1.5, 1.0, 0.99),
    "walker2d-medium-replay-v2": (2.5, 1.5, 1.2, 0.995),
    "walker2d-medium-expert-v2": (2.5, 1.0, 0.8, 0.99),
}


@struct.dataclass
class HParams:
    """Traced hyperparameters of A2PR (the authors' `utils/config.py` defaults; module docstring)."""

    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    value_lr: float = 3e-4  # A2PR.py: Adam(self.value.parameters(), lr=3e-4)
    vae_lr: float = 1e-3  # A2PR.py: Adam(self.vae.parameters()), PyTorch's default lr
    gamma: float = 0.99  # the authors' --discount
    tau: float = 0.005
    alpha: float = 2.5  # lambda = alpha / mean |Q|
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    mask: float = 0.5  # weight of the BC term per candidate action with non-negative advantage
    vae_weight: float = 1.0  # weight of the VAE's filtered reconstruction term
    kl_weight: float = 0.5  # A2PR.py: vae_loss = recon_loss + 0.5 * KL_loss
    value_expectile: float = 0.5  # 0.5: the authors' MSE for V; > 0.5 an IQL-style upper expectile

    def validate(self) -> None:
        """Raises ValueError for a concrete value out of range (skipped when traced)."""
        check_ranges(self, {"actor_lr": POSITIVE, "critic_lr": POSITIVE, "value_lr": POSITIVE, "vae_lr": POSITIVE,
                            "gamma": UNIT, "tau": HALF_OPEN_UNIT, "alpha": NON_NEGATIVE,
                            "policy_noise": NON_NEGATIVE, "noise_clip": NON_NEGATIVE, "mask": NON_NEGATIVE,
                            "vae_weight": NON_NEGATIVE, "kl_weight": NON_NEGATIVE, "value_expectile": OPEN_UNIT})


@struct.dataclass
class AgentState:
    """Actor, critics, their Polyak targets, V, the VAE and their Adam states; `step` counts updates."""

    actor_params: Any
    critic_params: Any
    target_actor_params: Any
    target_critic_params: Any
    value_params: Any
    vae_params: Any
    actor_opt: Any
    critic_opt: Any
    value_opt: Any
    vae_opt: Any
    step: jax.Array  # [] int32
    actor_metrics: dict  # the latest actor step's metrics (ACTOR_METRICS -> [] float32)


ACTOR_METRICS = ("train/actor_loss", "train/bc_loss", "train/lambda", "train/vae_target_frac",
                 "train/bc_weight_mean")


def make_networks(spec: Spec, config: AgentConfig) -> tuple[DeterministicActor, CriticEnsemble, ValueNet,
                                                            ConditionalVAE]:
    hidden = tuple(config.hidden_sizes)
    actor = DeterministicActor(spec.action_dim, hidden, layer_norm=config.actor_layer_norm)
    critic = CriticEnsemble(config.num_critics, hidden, layer_norm=config.critic_layer_norm)
    vae = ConditionalVAE(spec.action_dim, LATENT_PER_ACTION_DIM * spec.action_dim, VAE_HIDDEN)
    return actor, critic, ValueNet(hidden), vae


def init(key: jax.Array, spec: Spec, config: AgentConfig, hparams: HParams) -> AgentState:
    """Fresh actor, critics (targets = them), V and VAE."""
    check_continuous(spec, "A2PR")
    actor, critic, value, vae = make_networks(spec, config)
    k_actor, k_critic, k_value, k_vae, k_eps = jax.random.split(key, 5)
    obs, action = jnp.zeros((spec.obs_dim,)), jnp.zeros((spec.action_dim,))
    actor_params = actor.init(k_actor, obs)
    critic_params = critic.init(k_critic, obs, action)
    value_params = value.init(k_value, obs)
    vae_params = vae.init(k_vae, obs, action, k_eps)
    return AgentState(
        actor_params=actor_params, critic_params=critic_params, target_actor_params=actor_params,
        target_critic_params=critic_params, value_params=value_params, vae_params=vae_params,
        actor_opt=adam(hparams.actor_lr).init(actor_params), critic_opt=adam(hparams.critic_lr).init(critic_params),
        value_opt=adam(hparams.value_lr).init(value_params), vae_opt=adam(hparams.vae_lr).init(vae_params),
        step=jnp.int32(0), actor_metrics={name: jnp.float32(0.0) for name in ACTOR_METRICS})


def value_target(agent: AgentState, critic_params: Any, batch: Batch, key: jax.Array, *,
                 actor: DeterministicActor, critic: CriticEnsemble, hparams: HParams) -> jax.Array:
    """t [B] (`losses.a2pr_value_target`) at the critic step's a~' (the same `key`, so the same noise)."""
    next_action = actor.apply(agent.target_actor_params, batch.next_observations)
    next_action = smoothed_target_action(key, next_action, hparams.policy_noise, hparams.noise_clip)
    next_q_target = critic.apply(agent.target_critic_params, batch.next_observations, next_action)
    next_q = critic.apply(critic_params, batch.next_observations, next_action)
    return losses.a2pr_value_target(next_q_target, next_q, batch.rewards, batch.dones, hparams.gamma)


def value_loss(value_params: Any, target: jax.Array, obs: jax.Array, *, value: ValueNet,
               hparams: HParams) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_V = 2 expectile_loss(sg(t) - V(s), value_expectile): mean_b (V(s) - t)^2 at 0.5 (the authors' MSE).

    target: [B] t; obs: [B, D]. Returns (loss [], metrics).
    """
    v = value.apply(value_params, obs)
    loss = 2.0 * losses.expectile_loss(jax.lax.stop_gradient(target) - v, hparams.value_expectile)
    return loss, {"train/value_loss": loss, "train/v_mean": jnp.mean(v)}


def vae_loss(vae_params: Any, batch: Batch, q_data: jax.Array, v: jax.Array, key: jax.Array, *,
             vae: ConditionalVAE, hparams: HParams) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_VAE (`losses.a2pr_vae_loss`) on the dataset's (s, a), one z per row from `key`.

    q_data: [B] Q_1(s, a) of the critics just updated; v: [B] V_old(s).
    """
    recon, mean, log_std = vae.apply(vae_params, batch.observations, batch.actions, key)
    loss, parts = losses.a2pr_vae_loss(recon, batch.actions, mean, log_std, q_data, v,
                                       vae_weight=hparams.vae_weight, kl_weight=hparams.kl_weight)
    return loss, {"train/vae_loss": loss, "train/recon_loss": parts["recon_loss"],
                  "train/kl_loss": parts["kl_loss"]}


def actor_loss(actor_params: Any, critic_params: Any, batch: Batch, *, vae_params: Any, q_data: jax.Array,
               v: jax.Array, key: jax.Array, actor: DeterministicActor, critic: CriticEnsemble,
               vae: ConditionalVAE, hparams: HParams) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_pi (`losses.a2pr_actor_loss`) with Q_1, the VAE's reconstruction of pi(s) and V_old.

    q_data: [B] Q_1(s, a); v: [B] V_old(s); key: the VAE's z. Gradient flows to the actor through
    Q_1(s, pi(s)), pi(s) and the reconstruction (not stopped, as the authors').
    """
    pi_action = actor.apply(actor_params, batch.observations)
    q_pi = critic.apply(critic_params, batch.observations, pi_action)[0]
    vae_action, _, _ = vae.apply(vae_params, batch.observations, pi_action, key)
    q_vae = critic.apply(critic_params, batch.observations, vae_action)[0]
    loss, parts = losses.a2pr_actor_loss(q_pi, pi_action, batch.actions, vae_action, q_data - v, q_vae - v,
                                         alpha=hparams.alpha, mask=hparams.mask)
    return loss, {"train/actor_loss": loss, **{f"train/{name}": x for name, x in parts.items()}}


def update(
    agent: AgentState, batch: Batch, key: jax.Array, spec: Spec, config: AgentConfig, hparams: HParams,
) -> tuple[AgentState, dict[str, jax.Array]]:
    """One A2PR update: critics, V, VAE, and every `policy_freq`-th update the actor + targets."""
    actor, critic, value, vae = make_networks(spec, config)
    k_noise, k_vae, k_actor = jax.random.split(key, 3)

    grads, critic_metrics = jax.grad(td3_bc.critic_loss, has_aux=True)(
        agent.critic_params, agent, batch, k_noise, actor=actor, critic=critic, hparams=hparams)
    updates, critic_opt = adam(hparams.critic_lr).update(grads, agent.critic_opt, agent.critic_params)
    critic_params = optax.apply_updates(agent.critic_params, updates)

    target = value_target(agent, critic_params, batch, k_noise, actor=actor, critic=critic, hparams=hparams)
    v_old = value.apply(agent.value_params, batch.observations)
    grads, value_metrics = jax.grad(value_loss, has_aux=True)(agent.value_params, target, batch.observations,
                                                              value=value, hparams=hparams)
    updates, value_opt = adam(hparams.value_lr).update(grads, agent.value_opt, agent.value_params)
    value_params = optax.apply_updates(agent.value_params, updates)

    q_data = critic.apply(critic_params, batch.observations, batch.actions)[0]
    grads, vae_metrics = jax.grad(vae_loss, has_aux=True)(agent.vae_params, batch, q_data, v_old, k_vae, vae=vae,
                                                          hparams=hparams)
    updates, vae_opt = adam(hparams.vae_lr).update(grads, agent.vae_opt, agent.vae_params)
    vae_params = optax.apply_updates(agent.vae_params, updates)

    agent = agent.replace(critic_params=critic_params, critic_opt=critic_opt, value_params=value_params,
                          value_opt=value_opt, vae_params=vae_params, vae_opt=vae_opt)

    def actor_step(agent, batch):
        grads, metrics = jax.grad(actor_loss, has_aux=True)(
            agent.actor_params, agent.critic_params, batch, vae_params=agent.vae_params, q_data=q_data, v=v_old,
            key=k_actor, actor=actor, critic=critic, vae=vae, hparams=hparams)
        updates, actor_opt = adam(hparams.actor_lr).update(grads, agent.actor_opt, agent.actor_params)
        actor_params = optax.apply_updates(agent.actor_params, updates)
        agent = agent.replace(
            actor_params=actor_params, actor_opt=actor_opt,
            target_actor_params=polyak(actor_params, agent.target_actor_params, hparams.tau),
            target_critic_params=polyak(agent.critic_params, agent.target_critic_params, hparams.tau),
            actor_metrics={name: metrics[name].astype(jnp.float32) for name in ACTOR_METRICS})
        return agent, jnp.float32(1.0)

    agent, actor_metrics = delayed((agent.step + 1) % config.policy_freq == 0, agent, batch, actor_step)
    adv_positive = jnp.mean((q_data > v_old).astype(jnp.float32))
    return agent.replace(step=agent.step + 1), {**critic_metrics, **value_metrics, **vae_metrics, **actor_metrics,
                                                 "train/adv_positive_frac": adv_positive}


def act(agent: AgentState, obs: jax.Array, spec: Spec, config: AgentConfig) -> jax.Array:
    """The deterministic action pi(s) in [-1, 1]^A for one observation [D] or a batch [..., D]."""
    actor, _, _, _ = make_networks(spec, config)
    return actor.apply(agent.actor_params, obs)
