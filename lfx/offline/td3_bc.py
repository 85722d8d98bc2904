"""TD3+BC: TD3 with a behaviour-cloning term in the actor loss (Fujimoto & Gu 2021, "A Minimalist
Approach to Offline Reinforcement Learning", arXiv:2106.06860).

One `update` on a batch (s, a, r, s', d), as the authors' code (sfujim/TD3_BC `TD3_BC.py` `train`,
transcribed in CORL `algorithms/offline/td3_bc.py` `TD3_BC.train`):

    a~' = clip(pi'(s') + clip(sigma eps, -c, c), -1, 1)                 eps ~ N(0, I), sigma 0.2, c 0.5
    y   = r + gamma (1 - d) min_j Q'_j(s', a~')
    L_Q = sum_j mean_b (Q_j(s, a) - sg(y))^2                             (one Adam step on the critics)
    every `policy_freq`-th update ((step + 1) % policy_freq == 0, sfujim increments `total_it` first):
      L_pi = -lambda mean_b Q_1(s, pi(s)) + mean_{b,k} (pi(s) - a)^2,   lambda = alpha / sg(mean_b |Q_1(s, pi(s))|)
      (one Adam step on the actor, against the critics just updated), then
      pi' <- (1 - tau) pi' + tau pi,  Q' <- (1 - tau) Q' + tau Q

Losses: `lfx.offline.losses` (`clipped_double_q_target`, `ensemble_mse`, `td3_bc_actor_loss`).
Defaults = the paper's D4RL-locomotion settings (sfujim `main.py` / CORL `TrainConfig` and
`train`: lr 3e-4 for actor and critics, gamma 0.99, tau 0.005, policy_noise 0.2, noise_clip 0.5,
policy_freq 2, alpha 2.5, batch 256; states normalised by the dataset's mean/std, the recipe's
`normalize_obs`). Networks: (256, 256) ReLU actor with tanh output and twin critics
(`AgentConfig.hidden_sizes`); flax's default initialisation, as Unifloral's `td3_bc.py` (the PyTorch
references use PyTorch's). Where the references differ, the authors' code is followed: the critic loss
is a sum over the two critics (Unifloral averages them: half the gradient) and the actor is updated
every second step on its own batch (Unifloral takes two critic steps and one actor step per batch).

Metrics: the critic's of this update; the actor's ("train/actor_loss", "train/bc_loss", "train/lambda")
of the latest actor step (kept in `AgentState.actor_metrics`, zeros before the first), so a mean over
gradient steps is a mean over actor steps; "train/actor_updated" is 1 where this update stepped the actor.

Continuous actions only (discrete datasets: `lfx.offline.bc`, CQL).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from lfx.experiment.checks import HALF_OPEN_UNIT, NON_NEGATIVE, POSITIVE, UNIT, check_ranges
from lfx.offline import losses
from lfx.offline.networks import CriticEnsemble, DeterministicActor
from lfx.offline.types import AgentConfig, Batch, Spec


@struct.dataclass
class HParams:
    """Traced hyperparameters of TD3+BC (CORL `algorithms/offline/td3_bc.py` `TrainConfig`)."""

    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    alpha: float = 2.5  # lambda = alpha / mean |Q|
    policy_noise: float = 0.2  # sigma of the target policy smoothing (actions in [-1, 1])
    noise_clip: float = 0.5

    def validate(self) -> None:
        """Raises ValueError for a concrete value out of range (skipped when traced)."""
        check_ranges(self, {"actor_lr": POSITIVE, "critic_lr": POSITIVE, "gamma": UNIT, "tau": HALF_OPEN_UNIT,
                            "alpha": NON_NEGATIVE, "policy_noise": NON_NEGATIVE, "noise_clip": NON_NEGATIVE})


@struct.dataclass
class AgentState:
    """Actor, critics, their Polyak targets and Adam states; `step` counts updates done."""

    actor_params: Any
    critic_params: Any
    target_actor_params: Any
    target_critic_params: Any
    actor_opt: Any
    critic_opt: Any
    step: jax.Array  # [] int32
    actor_metrics: dict  # the latest actor step's metrics (ACTOR_METRICS -> [] float32)


ACTOR_METRICS = ("train/actor_loss", "train/bc_loss", "train/lambda")


def no_actor_metrics() -> dict:
    return {name: jnp.float32(0.0) for name in ACTOR_METRICS}


def make_networks(spec: Spec, config: AgentConfig) -> tuple[DeterministicActor, CriticEnsemble]:
    actor = DeterministicActor(spec.action_dim, tuple(config.hidden_sizes), layer_norm=config.actor_layer_norm)
    critic = CriticEnsemble(config.num_critics, tuple(config.hidden_sizes), layer_norm=config.critic_layer_norm)
    return actor, critic


def adam(lr) -> optax.GradientTransformation:
    """Adam with a traced learning rate (`inject_hyperparams`, as lfx.rl.sac)."""
    return optax.inject_hyperparams(optax.adam)(learning_rate=lr)


def check_continuous(spec: Spec, name: str) -> None:
    if spec.discrete:
        raise ValueError(f"{name} needs continuous actions; this dataset has {spec.num_actions} discrete ones "
                         f"(use 'bc' or 'cql').")


def fresh_agent(actor_params: Any, critic_params: Any, hparams) -> AgentState:
    """An AgentState at step 0: targets equal to the given params, fresh Adam states (TD3+BC, ReBRAC, ...)."""
    return AgentState(
        actor_params=actor_params, critic_params=critic_params, target_actor_params=actor_params,
        target_critic_params=critic_params, actor_opt=adam(hparams.actor_lr).init(actor_params),
        critic_opt=adam(hparams.critic_lr).init(critic_params), step=jnp.int32(0), actor_metrics=no_actor_metrics())


def init(key: jax.Array, spec: Spec, config: AgentConfig, hparams: HParams) -> AgentState:
    """Fresh actor and critics; targets start equal to them."""
    check_continuous(spec, "TD3+BC")
    return init_networks(key, spec, make_networks(spec, config), hparams)


def init_networks(key: jax.Array, spec: Spec, networks: tuple[DeterministicActor, CriticEnsemble],
                  hparams) -> AgentState:
    """`fresh_agent` of freshly initialised (actor, critics) (TD3+BC, ReBRAC)."""
    actor, critic = networks
    k_actor, k_critic = jax.random.split(key)
    obs, action = jnp.zeros((spec.obs_dim,)), jnp.zeros((spec.action_dim,))
    actor_params = actor.init(k_actor, obs)
    critic_params = critic.init(k_critic, obs, action)
    return fresh_agent(actor_params, critic_params, hparams)


def smoothed_target_action(key: jax.Array, action: jax.Array, policy_noise, noise_clip) -> jax.Array:
    """a~ = clip(action + clip(policy_noise eps, -noise_clip, noise_clip), -1, 1), eps ~ N(0, I). [B, A]."""
    noise = jnp.clip(policy_noise * jax.random.normal(key, action.shape), -noise_clip, noise_clip)
    return jnp.clip(action + noise, -1.0, 1.0)


def critic_loss(
    critic_params: Any, agent: AgentState, batch: Batch, key: jax.Array, *, actor: DeterministicActor,
    critic: CriticEnsemble, hparams: HParams,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_Q = sum_j mean_b (Q_j(s, a) - y)^2 with the smoothed clipped double-Q target y (module docstring)."""
    next_action = actor.apply(agent.target_actor_params, batch.next_observations)
    next_action = smoothed_target_action(key, next_action, hparams.policy_noise, hparams.noise_clip)
    next_q = critic.apply(agent.target_critic_params, batch.next_observations, next_action)  # [N, B]
    y = losses.clipped_double_q_target(next_q, batch.rewards, batch.dones, hparams.gamma)
    q = critic.apply(critic_params, batch.observations, batch.actions)  # [N, B]
    loss = losses.ensemble_mse(q, y)
    return loss, {"train/critic_loss": loss, "train/q_mean": jnp.mean(q), "train/target_mean": jnp.mean(y)}


def actor_loss(
    actor_params: Any, critic_params: Any, batch: Batch, *, actor: DeterministicActor, critic: CriticEnsemble,
    hparams: HParams,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_pi = -lambda mean Q_1(s, pi(s)) + mean (pi(s) - a)^2, lambda = alpha / sg(mean |Q_1|)."""
    pi_action = actor.apply(actor_params, batch.observations)
    q = critic.apply(critic_params, batch.observations, pi_action)[0]  # Q_1, as the authors
    loss = losses.td3_bc_actor_loss(q, pi_action, batch.actions, hparams.alpha)
    return loss, {"train/actor_loss": loss, "train/bc_loss": losses.bc_loss(pi_action, batch.actions),
                  "train/lambda": losses.q_normalizer(q, hparams.alpha)}


def polyak(params: Any, target: Any, tau) -> Any:
    """target <- (1 - tau) target + tau params (optax.incremental_update)."""
    return jax.tree.map(lambda p, t: (1.0 - tau) * t + tau * p, params, target)


def actor_and_targets_step(
    agent: AgentState, batch: Batch, *, loss_fn, hparams, tau,
) -> tuple[AgentState, dict[str, jax.Array]]:
    """One Adam step of the actor on `loss_fn(actor_params, critic_params, batch)`, then Polyak targets.

    Shared by TD3+BC and ReBRAC (their actor steps differ only in the loss).
    """
    grads, metrics = jax.grad(loss_fn, has_aux=True)(agent.actor_params, agent.critic_params, batch)
    updates, actor_opt = adam(hparams.actor_lr).update(grads, agent.actor_opt, agent.actor_params)
    actor_params = optax.apply_updates(agent.actor_params, updates)
    agent = agent.replace(
        actor_params=actor_params, actor_opt=actor_opt,
        target_actor_params=polyak(actor_params, agent.target_actor_params, tau),
        target_critic_params=polyak(agent.critic_params, agent.target_critic_params, tau),
        actor_metrics={name: metrics[name].astype(jnp.float32) for name in ACTOR_METRICS})
    return agent, jnp.float32(1.0)


def delayed(do_actor: jax.Array, agent: AgentState, batch: Batch, actor_step) -> tuple[AgentState, dict]:
    """`actor_step(agent, batch)` when `do_actor`, else `agent` unchanged; the actor metrics of the latest
    actor step and "train/actor_updated" (1 or 0)."""

    def skip(agent, batch):
        del batch
        return agent, jnp.float32(0.0)

    agent, updated = jax.lax.cond(do_actor, actor_step, skip, agent, batch)
    return agent, {**agent.actor_metrics, "train/actor_updated": updated}


def critic_then_delayed_actor(
    agent: AgentState, batch: Batch, key: jax.Array, hparams, *, networks: tuple[DeterministicActor, CriticEnsemble],
    critic_loss_fn, actor_loss_fn, do_actor: jax.Array,
) -> tuple[AgentState, dict[str, jax.Array]]:
    """One Adam step on the critics, then, where `do_actor`, an actor step + Polyak targets.

    The update of TD3+BC and ReBRAC, which differ only in their networks' initialisation, their losses
    and which steps move the actor.
    """
    actor, critic = networks
    grads, metrics = jax.grad(critic_loss_fn, has_aux=True)(agent.critic_params, agent, batch, key, actor=actor,
                                                            critic=critic, hparams=hparams)
    updates, critic_opt = adam(hparams.critic_lr).update(grads, agent.critic_opt, agent.critic_params)
    agent = agent.replace(critic_params=optax.apply_updates(agent.critic_params, updates), critic_opt=critic_opt)

    def loss_fn(actor_params, critic_params, batch):
        return actor_loss_fn(actor_params, critic_params, batch, actor=actor, critic=critic, hparams=hparams)

    def actor_step(agent, batch):
        return actor_and_targets_step(agent, batch, loss_fn=loss_fn, hparams=hparams, tau=hparams.tau)

    agent, actor_metrics = delayed(do_actor, agent, batch, actor_step)
    return agent.replace(step=agent.step + 1), {**metrics, **actor_metrics}


def update(
    agent: AgentState, batch: Batch, key: jax.Array, spec: Spec, config: AgentConfig, hparams: HParams,
) -> tuple[AgentState, dict[str, jax.Array]]:
    """One TD3+BC update: a critic step, and every `policy_freq`-th update an actor step + targets."""
    return critic_then_delayed_actor(agent, batch, key, hparams, networks=make_networks(spec, config),
                                     critic_loss_fn=critic_loss, actor_loss_fn=actor_loss,
                                     do_actor=(agent.step + 1) % config.policy_freq == 0)


def act(agent: AgentState, obs: jax.Array, spec: Spec, config: AgentConfig) -> jax.Array:
    """The deterministic action pi(s) in [-1, 1]^A for one observation [D] or a batch [..., D]."""
    actor, _ = make_networks(spec, config)
    return actor.apply(agent.actor_params, obs)
