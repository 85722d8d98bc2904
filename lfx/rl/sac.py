"""The SAC recipe: soft actor-critic as one jittable, vmappable training run.

    recipe = make_train(config)                     # static: shapes, buffer size, loop lengths
    state, metrics = recipe.train(key, hparams)     # traced: lr, gamma, tau, ... -> sweeps
    sweep = jax.jit(jax.vmap(jax.vmap(recipe.train, (0, None)), (None, 0)))

SAC (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications", arXiv:1812.05905):
twin critics with Polyak-averaged targets, a tanh-squashed Gaussian actor, and the entropy
temperature alpha tuned to a target entropy. With a = tanh(u), u ~ N(mu(s), sigma(s)^2), buffer
samples (s, a, r, s', d) (d = terminated) and alpha = exp(log alpha), one gradient step is, in
brax's order (`brax.training.agents.sac.losses`, `train.sgd_step`):

    L_alpha = E_s[ alpha * sg(-log pi(a|s) - H_target) ],          a ~ pi(.|s), H_target = -c |A|
    y       = sg( reward_scale * r + gamma (1 - d) [ min_j Q'_j(s', a') - alpha log pi(a'|s') ] )
    L_Q     = 0.5 * E_{s,a}[ mean_j (Q_j(s, a) - y)^2 ]             a' ~ pi(.|s')
    L_pi    = E_s[ alpha log pi(a|s) - min_j Q_j(s, a) ]             a ~ pi(.|s), reparametrised
    Q'      <- (1 - tau) Q' + tau Q

alpha is updated first and the new alpha enters L_Q and L_pi; the actor sees the critics just
updated. Truncated episodes are bootstrapped from their true final observation (the env's
`info["final_observation"]`), where brax masks those transitions out of L_Q.

An update collects `num_steps` steps of `num_envs` environments into the replay buffer (uniform
random actions in [-1, 1]^A until `learning_starts` env steps have been collected, as SB3/CleanRL
warm up), then takes `gradient_steps` gradient steps on batches of `batch_size` (none before
`learning_starts`). The buffer stores raw observations and squashed actions in [-1, 1]; with
`normalize_obs` the networks see (s - mean) / std under running statistics of every observation
collected so far, applied at sampling time (brax's `running_statistics` in SAC), and the env
receives the actor's `scale(a)` on its own bounds.

Shapes: N = num_envs, T = num_steps, B = batch_size, A = action dimension, D = observation size.
Metrics are per update, each [num_updates] after `run`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from gymnax.environments import spaces

from lfx import envs
from lfx.envs import wrappers
from lfx.rl import evaluation, loop, replay
from lfx.rl.networks import ACTIVATIONS, QEnsemble, SquashedGaussianActor


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """Static settings of a SAC run. Defaults: gymnax Pendulum-v1 at a CPU budget.

    One update = `num_steps` env steps of each of the `num_envs` envs, then `gradient_steps`
    gradient steps (`gradient_steps / (num_envs * num_steps)` per env step; brax's
    `grad_updates_per_step` per `num_envs` env steps).
    """

    env_name: str = "Pendulum-v1"
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    num_envs: int = 4
    num_steps: int = 1
    gradient_steps: int = 4
    total_timesteps: int = 20_000
    buffer_size: int = 100_000
    learning_starts: int = 2_000  # env steps of uniform random actions before the first gradient step
    batch_size: int = 256
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    num_critics: int = 2
    normalize_obs: bool = False
    eval_every: int = 0  # greedy evaluation after every this many updates (0: none)
    eval_episodes: int = 10
    eval_max_steps: int = 0  # 0: the env's episode length

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.steps_per_update

    def validate(self) -> None:
        """Raises ValueError, saying what to change, for a configuration that cannot run."""
        for name in ("num_envs", "num_steps", "gradient_steps", "total_timesteps", "buffer_size",
                     "batch_size", "eval_episodes", "num_critics"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SACConfig.{name} must be positive, got {getattr(self, name)}.")
        for name in ("learning_starts", "eval_every", "eval_max_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"SACConfig.{name} must be >= 0, got {getattr(self, name)}.")
        if not self.hidden_sizes or any(int(h) <= 0 for h in self.hidden_sizes):
            raise ValueError(f"SACConfig.hidden_sizes must be a non-empty tuple of positive widths, "
                             f"e.g. (256, 256); got {self.hidden_sizes!r}.")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {self.activation!r}; choose one of {sorted(ACTIVATIONS)}.")
        if self.num_updates < 1:
            raise ValueError(f"total_timesteps={self.total_timesteps} is smaller than one update "
                             f"({self.steps_per_update} env steps); raise it or lower num_envs*num_steps.")
        if self.steps_per_update > self.buffer_size:
            raise ValueError(f"buffer_size={self.buffer_size} cannot hold one update's "
                             f"{self.steps_per_update} transitions; raise buffer_size.")
        if self.learning_starts >= self.total_timesteps:
            raise ValueError(f"learning_starts={self.learning_starts} >= total_timesteps="
                             f"{self.total_timesteps}: the run would never learn; lower learning_starts.")
        envs.registry.check_name(self.env_name)


@struct.dataclass
class HParams:
    """Traced hyperparameters of SAC: a batch of these (leading axis) is a sweep."""

    lr: float = 3e-4  # Adam for actor, critics and temperature (brax's single learning_rate)
    gamma: float = 0.99
    tau: float = 0.005  # Polyak rate of the target critics
    init_alpha: float = 1.0  # the temperature at step 0 (brax/CleanRL: log alpha = 0)
    target_entropy_scale: float = 1.0  # H_target = -scale * |A| (the paper's 1; brax uses 0.5)
    reward_scale: float = 1.0  # brax's reward_scaling

    def validate(self) -> None:
        """Raises ValueError for concrete values that cannot train (skipped when traced)."""
        checks = {
            "lr": lambda v: v > 0,
            "gamma": lambda v: (v >= 0) & (v <= 1),
            "tau": lambda v: (v > 0) & (v <= 1),
            "init_alpha": lambda v: v > 0,
            "target_entropy_scale": lambda v: np.ones_like(v, bool),
            "reward_scale": lambda v: v > 0,
        }
        for name, ok in checks.items():
            value = getattr(self, name)
            if isinstance(value, jax.core.Tracer):
                continue
            x = np.asarray(value, np.float64)
            if not bool(np.all(ok(x) & np.isfinite(x))):
                raise ValueError(f"HParams.{name}={value} is out of range or not finite (lr, "
                                 f"init_alpha, reward_scale > 0; gamma in [0, 1]; tau in (0, 1]).")


class Transition(NamedTuple):
    """One env step of N envs (leaves [N, ...]); the buffer holds them flat ([capacity, ...])."""

    obs: jax.Array  # [D] raw observation
    action: jax.Array  # [A] squashed action in [-1, 1]
    reward: jax.Array  # [] raw reward
    terminated: jax.Array  # [] float32: 1 where the episode ended in a terminal state
    next_obs: jax.Array  # [D] the true successor (the final observation at an episode's end)


@struct.dataclass
class TrainState:
    """Everything a SAC run carries from one update to the next (the checkpointed state)."""

    actor_params: Any
    critic_params: Any
    target_params: Any
    log_alpha: jax.Array  # []
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any
    buffer: replay.ReplayBuffer
    obs_stats: wrappers.RunningMeanStd  # of every collected observation (unused without normalize_obs)
    env_state: Any
    obs: jax.Array  # [N, D]
    key: jax.Array
    update_idx: jax.Array  # [] int32
    last_return: jax.Array  # [] float32
    eval_return: jax.Array  # [] float32


class Networks(NamedTuple):
    actor: SquashedGaussianActor
    critic: QEnsemble


class SACRecipe(NamedTuple):
    """The pieces of a SAC run (the `lfx.experiment` recipe protocol, as `PPORecipe`)."""

    config: SACConfig
    env: Any
    env_params: Any
    network: SquashedGaussianActor  # what evaluation runs and `export_policy` writes
    networks: Networks
    eval_env: Any
    init: Callable[..., TrainState]
    update: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    run: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    train: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    num_updates: int


# ---------------------------------------------------------------------------------------------
# Losses (one batch each; `batch` leaves [B, ...], observations already normalised).


def target_entropy(action_dim: int, hparams: HParams) -> jax.Array:
    """H_target = -target_entropy_scale * |A|."""
    return -hparams.target_entropy_scale * action_dim


def alpha_loss(log_alpha: jax.Array, log_prob: jax.Array, entropy_target: jax.Array) -> jax.Array:
    """L_alpha = mean( exp(log_alpha) * sg(-log_prob - H_target) ); `log_prob` [B]."""
    return jnp.mean(jnp.exp(log_alpha) * jax.lax.stop_gradient(-log_prob - entropy_target))


def critic_loss(
    critic_params: Any, target_params: Any, actor_params: Any, batch: Transition, key: jax.Array,
    alpha: jax.Array, *, networks: Networks, hparams: HParams,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_Q = 0.5 mean_{b, j} (Q_j(s, a) - y)^2 with the soft TD target y (module docstring)."""
    pi = networks.actor.apply(actor_params, batch.next_obs)
    u = pi.sample(key)
    next_q = networks.critic.apply(target_params, batch.next_obs, jnp.tanh(u))  # [J, B]
    next_v = jnp.min(next_q, axis=0) - alpha * pi.log_prob(u)
    y = hparams.reward_scale * batch.reward + hparams.gamma * (1.0 - batch.terminated) * next_v
    y = jax.lax.stop_gradient(y)
    q = networks.critic.apply(critic_params, batch.obs, batch.action)  # [J, B]
    loss = 0.5 * jnp.mean(jnp.square(q - y[None]))
    return loss, {"train/critic_loss": loss, "train/q_mean": jnp.mean(q)}


def actor_loss(
    actor_params: Any, critic_params: Any, obs: jax.Array, key: jax.Array, alpha: jax.Array, *,
    networks: Networks,
) -> tuple[jax.Array, jax.Array]:
    """L_pi = mean( alpha log pi(a|s) - min_j Q_j(s, a) ), a = tanh(mu + sigma eps); aux: log pi [B]."""
    pi = networks.actor.apply(actor_params, obs)
    u = pi.sample(key)  # reparametrised: gradients flow through mu and sigma
    log_prob = pi.log_prob(u)
    q = networks.critic.apply(critic_params, obs, jnp.tanh(u))
    return jnp.mean(alpha * log_prob - jnp.min(q, axis=0)), log_prob


# ---------------------------------------------------------------------------------------------
# The recipe.


def make_env(config: SACConfig) -> tuple[Any, Any]:
    """The training env (+ episode statistics); rejects discrete action spaces."""
    env, env_params = envs.make(config.env_name, **dict(config.env_kwargs))
    space = env.action_space(env_params)
    if isinstance(space, spaces.Discrete):
        raise ValueError(f"SAC needs continuous actions; {config.env_name} has {space.n} discrete "
                         f"ones (use lfx.rl.dqn or lfx.rl.ppo).")
    return wrappers.EpisodeStatistics(env), env_params


def make_networks(config: SACConfig, env: Any, env_params: Any) -> Networks:
    space = env.action_space(env_params)
    dim = int(np.prod(space.shape))
    low = np.broadcast_to(np.asarray(space.low, np.float64), (dim,))
    high = np.broadcast_to(np.asarray(space.high, np.float64), (dim,))
    actor = SquashedGaussianActor(dim, tuple(config.hidden_sizes), config.activation,
                                  tuple(float(v) for v in low), tuple(float(v) for v in high))
    return Networks(actor, QEnsemble(tuple(config.hidden_sizes), config.activation, config.num_critics))


def make_optimizer(hparams: HParams) -> optax.GradientTransformation:
    """Adam with the learning rate traced (`inject_hyperparams`), for each of the three learners."""
    return optax.inject_hyperparams(optax.adam)(learning_rate=hparams.lr)


def _normalizer(config: SACConfig, stats: wrappers.RunningMeanStd) -> Callable[[jax.Array], jax.Array]:
    return (lambda x: wrappers.normalize(stats, x)) if config.normalize_obs else (lambda x: x)


def init_state(
    key: jax.Array, hparams: HParams, objective_params: Any = None, *,
    config: SACConfig, env: Any, env_params: Any, networks: Networks,
) -> TrainState:
    """A fresh run: N reset envs, actor and critics (targets = critics), an empty buffer."""
    del objective_params
    key, k_actor, k_critic, k_env = jax.random.split(key, 4)
    reset = jax.vmap(env.reset, in_axes=(0, None), axis_name=wrappers.ENV_AXIS)
    obs, env_state = reset(jax.random.split(k_env, config.num_envs), env_params)
    dim = networks.actor.action_dim
    actor_params = networks.actor.init(k_actor, obs[0])
    critic_params = networks.critic.init(k_critic, obs[0], jnp.zeros(dim))
    log_alpha = jnp.log(jnp.asarray(hparams.init_alpha, jnp.float32))
    tx = make_optimizer(hparams)
    example = Transition(obs[0], jnp.zeros(dim), jnp.float32(0), jnp.float32(0), obs[0])
    return TrainState(
        actor_params=actor_params, critic_params=critic_params, target_params=critic_params,
        log_alpha=log_alpha, actor_opt=tx.init(actor_params), critic_opt=tx.init(critic_params),
        alpha_opt=tx.init(log_alpha), buffer=replay.init(example, config.buffer_size),
        obs_stats=wrappers.RunningMeanStd.create(obs.shape[1:]), env_state=env_state, obs=obs,
        key=key, update_idx=jnp.int32(0), last_return=jnp.float32(0.0),
        eval_return=jnp.float32(0.0),
    )


def collect(
    state: TrainState, *, config: SACConfig, env: Any, env_params: Any, networks: Networks,
) -> tuple[TrainState, Transition, jax.Array, jax.Array]:
    """T steps of the N envs; returns the state, the transitions [T, N, ...] and the finished
    episodes' returns and flags [T, N]. Random actions until `learning_starts` env steps."""
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None), axis_name=wrappers.ENV_AXIS)
    norm = _normalizer(config, state.obs_stats)
    dim = networks.actor.action_dim
    warmup = state.update_idx * config.steps_per_update < config.learning_starts

    def env_step(carry, _):
        env_state, obs, key = carry
        key, k_pi, k_rand, k_env = jax.random.split(key, 4)
        pi = networks.actor.apply(state.actor_params, norm(obs))
        a = jnp.where(warmup, jax.random.uniform(k_rand, (config.num_envs, dim), minval=-1.0, maxval=1.0),
                      jnp.tanh(pi.sample(k_pi)))
        next_obs, env_state, reward, terminated, _, info = step(
            jax.random.split(k_env, config.num_envs), env_state, networks.actor.scale(a), env_params
        )
        tr = Transition(obs, a, reward.astype(jnp.float32), terminated.astype(jnp.float32),
                        info["final_observation"])
        return (env_state, next_obs, key), (tr, info["episode_return"], info["episode_done"])

    (env_state, obs, key), (traj, ep_ret, ep_done) = jax.lax.scan(
        env_step, (state.env_state, state.obs, state.key), None, config.num_steps
    )
    return state.replace(env_state=env_state, obs=obs, key=key), traj, ep_ret, ep_done


def sgd_step(
    state: TrainState, key: jax.Array, *, config: SACConfig, networks: Networks, hparams: HParams,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One gradient step of alpha, then the critics, then the actor, then the targets (brax's order)."""
    tx = make_optimizer(hparams)
    k_batch, k_alpha, k_critic, k_actor = jax.random.split(key, 4)
    batch = replay.sample(state.buffer, k_batch, config.batch_size)
    norm = _normalizer(config, state.obs_stats)
    batch = batch._replace(obs=norm(batch.obs), next_obs=norm(batch.next_obs))
    h_target = target_entropy(networks.actor.action_dim, hparams)

    pi = networks.actor.apply(state.actor_params, batch.obs)
    log_prob = pi.log_prob(pi.sample(k_alpha))
    a_loss, g = jax.value_and_grad(alpha_loss)(state.log_alpha, log_prob, h_target)
    upd, alpha_opt = tx.update(g, state.alpha_opt, state.log_alpha)
    log_alpha = optax.apply_updates(state.log_alpha, upd)
    alpha = jnp.exp(log_alpha)

    g, c_metrics = jax.grad(critic_loss, has_aux=True)(
        state.critic_params, state.target_params, state.actor_params, batch, k_critic, alpha,
        networks=networks, hparams=hparams,
    )
    upd, critic_opt = tx.update(g, state.critic_opt, state.critic_params)
    critic_params = optax.apply_updates(state.critic_params, upd)

    (p_loss, log_prob), g = jax.value_and_grad(actor_loss, has_aux=True)(
        state.actor_params, critic_params, batch.obs, k_actor, alpha, networks=networks
    )
    upd, actor_opt = tx.update(g, state.actor_opt, state.actor_params)
    actor_params = optax.apply_updates(state.actor_params, upd)

    target_params = optax.incremental_update(critic_params, state.target_params, hparams.tau)
    state = state.replace(actor_params=actor_params, critic_params=critic_params,
                          target_params=target_params, log_alpha=log_alpha, actor_opt=actor_opt,
                          critic_opt=critic_opt, alpha_opt=alpha_opt)
    return state, {**c_metrics, "train/actor_loss": p_loss, "train/alpha_loss": a_loss,
                   "train/alpha": alpha, "train/entropy": -jnp.mean(log_prob)}


def update_step(
    state: TrainState, hparams: HParams, objective_params: Any = None, *,
    config: SACConfig, env: Any, env_params: Any, networks: Networks,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """Collect T x N steps into the buffer, then `gradient_steps` SGD steps (once learning started).

    Metrics (each []): the loss metrics averaged over the gradient steps (0 before learning
    starts), "train/episode_return" (mean over episodes finished in this update, else the last),
    "train/episodes", "train/env_steps".
    """
    del objective_params
    state, traj, ep_ret, ep_done = collect(state, config=config, env=env, env_params=env_params,
                                           networks=networks)
    flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), traj)
    stats = state.obs_stats
    if config.normalize_obs:
        stats = jax.vmap(lambda s, x: s.update_batch(x, "batch"), in_axes=(None, 0),
                         axis_name="batch")(stats, flat.obs)
        stats = jax.tree.map(lambda x: x[0], stats)
    state = state.replace(buffer=replay.add(state.buffer, flat), obs_stats=stats)

    key, k_sgd = jax.random.split(state.key)
    learning = (state.update_idx + 1) * config.steps_per_update >= config.learning_starts
    step = functools.partial(sgd_step, config=config, networks=networks, hparams=hparams)

    def learn(s):
        s, m = jax.lax.scan(step, s, jax.random.split(k_sgd, config.gradient_steps))
        return s, jax.tree.map(jnp.mean, m)

    def skip(s):
        return s, jax.tree.map(jnp.zeros_like, jax.eval_shape(learn, s)[1])

    state, metrics = jax.lax.cond(learning, learn, skip, state)

    last_return, num_done = loop.finished_episodes(ep_ret, ep_done, state.last_return)
    state = state.replace(key=key, update_idx=state.update_idx + 1, last_return=last_return)
    metrics.update({"train/episode_return": last_return, "train/episodes": num_done,
                    "train/env_steps": state.update_idx * config.steps_per_update})
    return state, metrics


def policy_act(params: Any, obs_stats: wrappers.RunningMeanStd | None, *,
               actor: SquashedGaussianActor) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """`act(obs, key) -> deterministic env action` of one run's actor (normalising if stats given)."""

    def act(obs, key):
        del key
        if obs_stats is not None:
            obs = wrappers.normalize(obs_stats, obs)
        return actor.apply(params, obs, method="act")

    return act


def evaluate_state(state: TrainState, *, config: SACConfig, eval_env: Any, env_params: Any,
                   networks: Networks) -> tuple[TrainState, jax.Array]:
    """Deterministic evaluation: `eval_episodes` episodes of the actor's tanh(mean) on the raw env."""
    key, k_eval = jax.random.split(state.key)
    max_steps = config.eval_max_steps or int(env_params.max_steps_in_episode)
    act = policy_act(state.actor_params, state.obs_stats if config.normalize_obs else None,
                     actor=networks.actor)
    returns, _ = evaluation.evaluate(k_eval, act, eval_env, env_params,
                                     num_episodes=config.eval_episodes, max_steps=max_steps)
    return state.replace(key=key), jnp.mean(returns)


def make_train(config: SACConfig) -> SACRecipe:
    """Builds the SAC recipe for a static config; validates it before anything is compiled."""
    config.validate()
    env, env_params = make_env(config)
    networks = make_networks(config, env, env_params)
    eval_env, _ = envs.make(config.env_name, **dict(config.env_kwargs))
    parts = {"config": config, "env": env, "env_params": env_params, "networks": networks}
    init = functools.partial(init_state, **parts)
    update = functools.partial(update_step, **parts)
    evaluate = functools.partial(evaluate_state, config=config, eval_env=eval_env,
                                 env_params=env_params, networks=networks)
    run = functools.partial(loop.run_updates, update=update, evaluate=evaluate, eval_every=config.eval_every)
    train = functools.partial(loop.train_run, init=init, run=run, num_updates=config.num_updates)
    return SACRecipe(config, env, env_params, networks.actor, networks, eval_env, init, update, run,
                     train, config.num_updates)


# brax's SAC settings (brax's training notebook, `sac.train(...)` per env; halfcheetah: hopper's with
# reward scale 1, as the notebook trains halfcheetah with PPO only). Per env: (num_timesteps,
# reward_scaling, discounting, learning_rate, num_envs, batch_size, grad_updates_per_step,
# max_replay_size, min_replay_size).
BRAX_SAC = {
    "hopper": (6_553_600, 30.0, 0.997, 6e-4, 128, 512, 64, 1_048_576, 8192),
    "walker2d": (7_864_320, 5.0, 0.997, 6e-4, 128, 128, 32, 1_048_576, 8192),
    "halfcheetah": (6_553_600, 1.0, 0.997, 6e-4, 128, 512, 64, 1_048_576, 8192),
}


def brax_settings(name: str) -> tuple[SACConfig, HParams]:
    """brax's SAC settings for brax env `name` (spring backend) as lfx's (SACConfig, HParams).

    Translation: brax takes one step of `num_envs` envs then `grad_updates_per_step` gradient steps,
    so `num_steps = 1`, `gradient_steps = grad_updates_per_step`; `max_replay_size` -> `buffer_size`;
    `min_replay_size` -> `learning_starts`; brax's target entropy -0.5 |A| -> `target_entropy_scale
    = 0.5`; networks 256-256 ReLU, tau 0.005, alpha_0 = 1; observations normalised.
    """
    steps, rs, gamma, lr, num_envs, batch, grads, replay_size, start = BRAX_SAC[name]
    static = SACConfig(
        env_name=f"brax/{name}", env_kwargs=(("backend", "spring"),), num_envs=num_envs, num_steps=1,
        gradient_steps=grads, total_timesteps=steps, buffer_size=replay_size, learning_starts=start,
        batch_size=batch, normalize_obs=True, eval_every=2560,
    )  # 2560 updates = 327,680 steps: 20 evaluations per run, as brax's num_evals
    return static, HParams(lr=lr, gamma=gamma, reward_scale=rs, target_entropy_scale=0.5)


Config = SACConfig  # the name `lfx.rl.main` looks up in every recipe module
