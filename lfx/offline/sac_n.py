"""SAC-N and EDAC: soft actor-critic with N clipped critics, and their action-gradient diversity.

An, Moon, Kim & Song 2021, "Uncertainty-Based Offline Reinforcement Learning with Diversified
Q-Ensemble", arXiv:2110.01548; the authors' code snu-mllab/EDAC
(`lifelong_rl/trainers/q_learning/sac.py`, `SACTrainer.train_from_torch`), CORL
(`algorithms/offline/edac.py`, `sac_n.py`) and Unifloral (`algorithms/sac_n.py`, `edac.py`).
One module: the N critics are the vmapped axis of one `CriticEnsemble` (config.num_critics) and
eta = 0 is SAC-N. With a ~ pi(.|s) reparametrised, a' ~ pi(.|s'), alpha = exp(log alpha):

    L_alpha  = -mean_b log_alpha * sg(log pi(a|s) + H_target),      H_target = -scale * A
    L_pi     = mean_b ( alpha log pi(a|s) - min_j Q_j(s, a) )
    y        = r + gamma (1 - d) ( min_j Q'_j(s', a') - alpha log pi(a'|s') )            (sg)
    L_Q      = sum_j mean_b (Q_j(s, a_D) - y)^2 + eta * L_div                (ensemble_losses)
    Q'       <- (1 - tau) Q' + tau Q

All three losses are taken at the parameters before this step (the authors' code computes every
loss, then steps alpha, the actor and the critics; CORL and Unifloral step them one after the
other, so their critic target sees the new actor and alpha). A step is Adam on each of the three
(PyTorch's Adam: eps 1e-8; Unifloral uses 1e-5), then the Polyak update every
`target_update_period` steps (1 in every reference).

Networks (the references, all three files): actor and critics have 3 hidden layers of 256 (use
`REFERENCE_AGENT_CONFIG`; `AgentConfig`'s default is 2 layers), hidden biases 0.1, hidden kernels
PyTorch's U(+-1/sqrt(fan_in)), output layers U(+-1e-3) (actor) and U(+-3e-3) (critics): offline
networks' "rebrac" initialiser, which is the EDAC paper's. The actor's log sigma is clipped to
[-5, 2] (the EDAC paper's range, not SAC's [-20, 2]); its density includes tanh's log-determinant.

Hyperparameters per D4RL task (EDAC paper Table 6/7 as CORL ships them, `configs/offline/{sac_n,
edac}/<env>/<level>_v2.yaml`; lr 3e-4 for actor, critics and alpha, batch 256, gamma 0.99,
tau 5e-3, 3M gradient steps everywhere):

    task                        SAC-N: N    EDAC: N   eta
    halfcheetah-medium             10             10   1.0
    halfcheetah-medium-replay      10             10   1.0
    halfcheetah-medium-expert      10             10   5.0
    hopper-medium                 500             50   1.0
    hopper-medium-replay          200             50   1.0
    hopper-medium-expert          200             50   1.0
    walker2d-medium                20             10   1.0
    walker2d-medium-replay         20             10   1.0
    walker2d-medium-expert         20             10   5.0

Defaults, with `REFERENCE_AGENT_CONFIG` (N = 10): `HParams()` is SAC-N on halfcheetah (eta = 0;
CORL `sac_n.py` TrainConfig, Unifloral `sac_n.py` Args), `EDACHParams()` EDAC on halfcheetah-medium
(eta = 1.0; CORL `edac.py` TrainConfig L33-45, Unifloral `edac.py` Args L40-47). The registry runs
"sac_n" with the first and "edac" with the second (`lfx.offline.recipe.algorithm_hparams`).

Shapes: B batch, D observation size, A action dimension, N critics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from lfx.experiment import checks
from lfx.offline import ensemble_losses
from lfx.offline.networks import MLP, CriticEnsemble
from lfx.offline.types import AgentConfig, Batch, Spec
from lfx.rl import sac
from lfx.rl.networks import Policy

REFERENCE_AGENT_CONFIG = AgentConfig(hidden_sizes=(256, 256, 256), num_critics=10)
_FINITE = ("finite", lambda v: np.ones_like(v, bool))  # check_ranges adds isfinite


@struct.dataclass
class HParams:
    """Traced hyperparameters of SAC-N (eta = 0) and EDAC (eta > 0); defaults: SAC-N, halfcheetah."""

    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 5e-3
    eta: float = 0.0  # weight of the diversity term; 0 is SAC-N
    init_alpha: float = 1.0  # the references start at log alpha = 0
    target_entropy_scale: float = 1.0  # H_target = -scale * A
    target_update_period: float = 1.0  # Polyak update every this many steps
    adam_eps: float = 1e-8

    def validate(self) -> None:
        """Raises ValueError for concrete values that cannot train (skipped when traced)."""
        checks.check_ranges(self, {
            "actor_lr": checks.POSITIVE, "critic_lr": checks.POSITIVE, "alpha_lr": checks.POSITIVE,
            "gamma": checks.UNIT, "tau": checks.HALF_OPEN_UNIT, "eta": checks.NON_NEGATIVE,
            "init_alpha": checks.POSITIVE, "target_entropy_scale": _FINITE,
            "target_update_period": (">= 1", lambda v: v >= 1), "adam_eps": checks.POSITIVE,
        })


@struct.dataclass
class EDACHParams(HParams):
    """EDAC's defaults: `HParams` with eta = 1.0 (halfcheetah-medium; the per-task table above)."""

    eta: float = 1.0


@struct.dataclass
class AgentState:
    actor_params: Any
    critic_params: Any
    target_params: Any
    log_alpha: jax.Array  # []
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any
    step: jax.Array  # [] int32, gradient steps taken


class TanhGaussianActor(nn.Module):
    """pi(u | s) = N(mu(s), exp(clip(log sigma(s) + offset, lo, hi))^2), a = tanh(u) in [-1, 1]^A.

    The EDAC paper's actor (CORL `edac.py` `Actor`): an MLP with the "rebrac" (EDAC) initialisation,
    heads U(+-1e-3); `Policy.log_prob(u)` includes tanh's log-determinant. `act` is tanh(mu).
    CQL uses it with CORL's log-std range [-20, 2] and offset -1 (`TanhGaussianPolicy`).
    """

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256, 256)
    activation: str = "relu"
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    log_std_offset: float = 0.0

    @nn.compact
    def __call__(self, obs):
        out = MLP(2 * self.action_dim, self.hidden_sizes, self.activation, False, "rebrac", 1e-3, name="mlp")(obs)
        mean, log_std = jnp.split(out, 2, axis=-1)
        log_std = jnp.clip(log_std + self.log_std_offset, self.log_std_min, self.log_std_max)
        return Policy(mean=mean, log_std=log_std, squash=True)

    def act(self, obs):
        return self(obs).mode()


def make_networks(spec: Spec, config: AgentConfig, **actor_kwargs: Any) -> sac.Networks:
    """The actor and the N-critic ensemble for a continuous spec (lfx.rl.sac's Networks pair)."""
    if spec.discrete:
        raise ValueError("SAC-N / EDAC need continuous actions; for a discrete dataset use "
                         "lfx.offline.cql (discrete CQL) or BC.")
    actor = TanhGaussianActor(spec.action_dim, tuple(config.hidden_sizes), **actor_kwargs)
    critic = CriticEnsemble(config.num_critics, tuple(config.hidden_sizes), layer_norm=config.critic_layer_norm,
                            initializer="rebrac", head_scale=3e-3)
    return sac.Networks(actor, critic)


# ---------------------------------------------------------------------------------------------
# Optimisation helpers (shared with lfx.offline.cql).


def adam_init(params: Any) -> optax.OptState:
    return optax.scale_by_adam().init(params)


def adam_step(params: Any, grads: Any, opt_state: optax.OptState, lr: jax.Array,
              eps: jax.Array) -> tuple[Any, optax.OptState]:
    """One Adam step with the learning rate and eps read from the (traced) hparams of this call."""
    updates, opt_state = optax.scale_by_adam(eps=eps).update(grads, opt_state, params)
    return jax.tree.map(lambda p, u: p - lr * u, params, updates), opt_state


def polyak(target: Any, online: Any, step: jax.Array, tau: jax.Array, period: jax.Array) -> Any:
    """target <- (1 - tau) target + tau online after every `period`-th step (`step` counts from 1)."""
    period = jnp.maximum(jnp.round(period), 1.0).astype(jnp.int32)
    rate = jnp.where(jnp.mod(step, period) == 0, tau, 0.0)
    return optax.incremental_update(online, target, rate)


def per_critic_q(critic: nn.Module, critic_params: Any, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """Q_j(s_b, a_{j, b}) with a separate action per critic: actions [N, B, A] -> [N, B].

    Equals `critic.apply(params, obs, a)` when every a_j = a; grad wrt `actions` is then
    dQ_j/da for each critic at O(N) cost (a jacobian of the [N] outputs would cost O(N^2)).
    """
    single = critic.clone(num_critics=1)

    def one(params, action):
        return single.apply(jax.tree.map(lambda x: x[None], params), obs, action)[0]

    return jax.vmap(one)(critic_params, actions)


def action_gradients(critic: nn.Module, critic_params: Any, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """dQ_j/da at the dataset's (s_b, a_b) for every critic: [N, B, A], differentiable in the params."""
    tiled = jnp.broadcast_to(actions, (critic.num_critics,) + actions.shape)
    return jax.grad(lambda a: jnp.sum(per_critic_q(critic, critic_params, obs, a)))(tiled)


# ---------------------------------------------------------------------------------------------
# Losses at one batch.


def critic_loss(
    critic_params: Any, target_params: Any, actor_params: Any, batch: Batch, key: jax.Array,
    alpha: jax.Array, *, networks: sac.Networks, hparams: HParams,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_Q = sum_j mean_b (Q_j(s, a) - y)^2 + eta L_div (module docstring); aux: metrics.

    a' = tanh(u), u ~ pi(.|s') drawn with `key` exactly as lfx.rl.sac.critic_loss draws it, so at
    N = 2 and eta = 0 the TD part is 2N = 4 times lfx.rl.sac's 0.5 mean (a constant Adam ignores).
    The diversity term is skipped by `lax.cond` when eta = 0 (both branches run under a vmap over
    eta, where it is multiplied by 0).
    """
    pi = networks.actor.apply(actor_params, batch.next_observations)
    u = pi.sample(key)
    next_q = networks.critic.apply(target_params, batch.next_observations, jnp.tanh(u))
    y = ensemble_losses.sac_n_target(next_q, pi.log_prob(u), batch.rewards, batch.dones,
                                     gamma=hparams.gamma, alpha=alpha)
    q = networks.critic.apply(critic_params, batch.observations, batch.actions)
    td = ensemble_losses.ensemble_td_loss(q, y)
    if networks.critic.num_critics >= 2:
        def diversity(params):
            grads = action_gradients(networks.critic, params, batch.observations, batch.actions)
            return ensemble_losses.edac_diversity(grads)

        div = jax.lax.cond(hparams.eta > 0, diversity, lambda _: jnp.zeros((), td.dtype), critic_params)
    else:
        div = jnp.zeros((), td.dtype)
    loss = td + hparams.eta * div
    return loss, {"train/critic_loss": loss, "train/td_loss": td, "train/diversity_loss": div,
                  "train/q_mean": jnp.mean(q), "train/q_std": jnp.mean(jnp.std(q, axis=0)),
                  "train/target_mean": jnp.mean(y)}


def target_entropy(spec: Spec, hparams: HParams) -> jax.Array:
    return -hparams.target_entropy_scale * spec.action_dim


# ---------------------------------------------------------------------------------------------
# The algorithm interface (lfx.offline.types).


def init(key: jax.Array, spec: Spec, config: AgentConfig, hparams: HParams) -> AgentState:
    """Actor, N critics (targets = critics), log alpha = log init_alpha, fresh Adam states."""
    config.validate()
    hparams.validate()
    eta = hparams.eta
    if config.num_critics < 2 and not isinstance(eta, jax.core.Tracer) and bool(jnp.any(jnp.asarray(eta) > 0)):
        raise ValueError(f"EDAC's diversity term (eta={eta}) needs agent.num_critics >= 2, got "
                         f"{config.num_critics}; raise num_critics or set eta=0 (SAC-N).")
    networks = make_networks(spec, config)
    k_actor, k_critic = jax.random.split(key)
    obs, action = jnp.zeros((spec.obs_dim,)), jnp.zeros((spec.action_dim,))
    actor_params = networks.actor.init(k_actor, obs)
    critic_params = networks.critic.init(k_critic, obs, action)
    log_alpha = jnp.log(jnp.asarray(hparams.init_alpha, jnp.float32))
    return AgentState(actor_params=actor_params, critic_params=critic_params, target_params=critic_params,
                      log_alpha=log_alpha, actor_opt=adam_init(actor_params), critic_opt=adam_init(critic_params),
                      alpha_opt=adam_init(log_alpha), step=jnp.int32(0))


def update(agent: AgentState, batch: Batch, key: jax.Array, spec: Spec, config: AgentConfig,
           hparams: HParams) -> tuple[AgentState, dict[str, jax.Array]]:
    """One SAC-N / EDAC step: alpha, actor and critics from the same parameters, then Polyak."""
    networks = make_networks(spec, config)
    k_actor, k_critic = jax.random.split(key)
    alpha = jnp.exp(agent.log_alpha)
    (a_loss, log_prob), a_grads = jax.value_and_grad(sac.actor_loss, has_aux=True)(
        agent.actor_params, agent.critic_params, batch.observations, k_actor, alpha, networks=networks)
    t_loss, t_grad = jax.value_and_grad(ensemble_losses.temperature_loss)(
        agent.log_alpha, log_prob, target_entropy(spec, hparams))
    (_, metrics), c_grads = jax.value_and_grad(critic_loss, has_aux=True)(
        agent.critic_params, agent.target_params, agent.actor_params, batch, k_critic, alpha,
        networks=networks, hparams=hparams)

    actor_params, actor_opt = adam_step(agent.actor_params, a_grads, agent.actor_opt, hparams.actor_lr,
                                        hparams.adam_eps)
    log_alpha, alpha_opt = adam_step(agent.log_alpha, t_grad, agent.alpha_opt, hparams.alpha_lr, hparams.adam_eps)
    critic_params, critic_opt = adam_step(agent.critic_params, c_grads, agent.critic_opt, hparams.critic_lr,
                                          hparams.adam_eps)
    step = agent.step + 1
    target_params = polyak(agent.target_params, critic_params, step, hparams.tau, hparams.target_update_period)
    metrics.update({"train/actor_loss": a_loss, "train/alpha_loss": t_loss, "train/alpha": alpha,
                    "train/entropy": -jnp.mean(log_prob)})
    return AgentState(actor_params=actor_params, critic_params=critic_params, target_params=target_params,
                      log_alpha=log_alpha, actor_opt=actor_opt, critic_opt=critic_opt, alpha_opt=alpha_opt,
                      step=step), metrics


def act(agent: AgentState, obs: jax.Array, spec: Spec, config: AgentConfig) -> jax.Array:
    """The deterministic action tanh(mu(s)) in [-1, 1]^A, for [D] or [..., D] observations."""
    return make_networks(spec, config).actor.apply(agent.actor_params, obs, method="act")
