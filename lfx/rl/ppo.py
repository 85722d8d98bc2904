"""The PPO recipe: a whole training run as one jittable, vmappable function.

    recipe = make_train(config)                     # static: shapes, loop lengths, code paths
    state, metrics = recipe.train(key, hparams)     # traced: floats -> a batch of them is a sweep
    sweep = jax.jit(jax.vmap(jax.vmap(recipe.train, (0, None)), (None, 0)))
    state, metrics = sweep(seed_keys, hparams_batch)  # metrics[k]: [H, S, num_updates]

PPO (Schulman et al. 2017, arXiv:1707.06347) with the PureJaxRL layout (Lu et al. 2022,
"Discovered Policy Optimisation", arXiv:2210.05639): vectorised environments, GAE, several epochs of
shuffled minibatches, Adam with global-norm clipping and optional linear learning-rate annealing,
the learning rate and its schedule inside optax (`make_optimizer`).
The policy objective is pluggable (see `lfx.rl.losses`): `make_train(config, policy_objective=f)`
and `train(key, hparams, objective_params)` let a learned objective (LPO, TA-LPO, ...) drive the
agent.

The pieces are module-level functions, bound to a config by `make_train` with `functools.partial`:
`init_state` -> `num_updates` x `update_step` (= `rollout`, `compute_advantages`,
`shuffle_minibatches`, `minibatch_epochs` over `ppo_loss`), scanned by `lfx.rl.loop.run_updates`.
Shapes: T = num_steps, N = num_envs, M = minibatch_size, K = num_minibatches, E = update_epochs.
Metrics are aggregated per update inside the scan: every array in `metrics` is [num_updates].
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
from lfx.rl import evaluation, loop, losses
from lfx.rl.gae import gae_advantages
from lfx.rl.networks import ACTION_DISTS, ACTIVATIONS, TORSOS, ActorCritic


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Static settings of a PPO run: everything that fixes shapes, loop lengths or code paths.

    Defaults are PureJaxRL's CartPole-v1 settings.
    """

    env_name: str = "CartPole-v1"
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    num_envs: int = 4
    num_steps: int = 128
    total_timesteps: int = 500_000
    update_epochs: int = 4
    num_minibatches: int = 4
    network: str = "mlp"
    hidden_sizes: tuple[int, ...] = (64, 64)
    value_hidden_sizes: tuple[int, ...] = ()  # the critic's widths; () = hidden_sizes
    activation: str = "tanh"
    action_dist: str = "gaussian"  # continuous actions: "gaussian" or brax's "tanh_normal"
    clip_value: bool = True  # PPO's clipped value loss; False: 0.5 (V - G)^2 (brax's default)
    anneal_lr: bool = True
    normalize_obs: bool = False
    normalize_reward: bool = False
    reward_norm_gamma: float = 0.99
    objective: str = "ppo_clip"
    rollout_unroll: int = 1  # env steps per iteration of the rollout's scan (`lax.scan(unroll=)`)
    eval_every: int = 0  # greedy evaluation after every this many updates (0: none)
    eval_episodes: int = 10
    eval_max_steps: int = 0  # 0: the env's episode length (`max_steps_in_episode`)

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    @property
    def steps_per_update(self) -> int:
        """Env steps per update (every `lfx.rl` config names it so `lfx.rl.main` can)."""
        return self.batch_size

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    def validate(self) -> None:
        """Raises ValueError, saying what to change, for a configuration that cannot run."""
        for name in ("num_envs", "num_steps", "update_epochs", "num_minibatches", "total_timesteps",
                     "rollout_unroll", "eval_episodes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"PPOConfig.{name} must be positive, got {getattr(self, name)}.")
        for name, zero in (("eval_every", "no evaluation"), ("eval_max_steps", "the episode length")):
            if getattr(self, name) < 0:
                raise ValueError(f"PPOConfig.{name} must be >= 0 (0: {zero}), got {getattr(self, name)}.")
        if not self.hidden_sizes or any(int(h) <= 0 for h in self.hidden_sizes):
            raise ValueError(
                f"PPOConfig.hidden_sizes must be a non-empty tuple of positive widths, e.g. (64, 64); "
                f"got {self.hidden_sizes!r}."
            )
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_minibatches={self.num_minibatches} does not divide the batch "
                f"num_envs*num_steps={self.batch_size}; choose a divisor of {self.batch_size}."
            )
        if self.num_updates < 1:
            raise ValueError(
                f"total_timesteps={self.total_timesteps} is smaller than one batch "
                f"({self.batch_size} steps); raise total_timesteps or lower num_envs*num_steps."
            )
        if self.network not in TORSOS:
            raise ValueError(f"Unknown network {self.network!r}; choose one of {TORSOS}.")
        if self.action_dist not in ACTION_DISTS:
            raise ValueError(f"Unknown action_dist {self.action_dist!r}; choose one of {ACTION_DISTS}.")
        if any(int(h) <= 0 for h in self.value_hidden_sizes):
            raise ValueError(f"PPOConfig.value_hidden_sizes must be positive widths or (), got "
                             f"{self.value_hidden_sizes!r}.")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"Unknown activation {self.activation!r}; choose one of {sorted(ACTIVATIONS)}."
            )
        if self.objective not in losses.POLICY_OBJECTIVES:
            raise ValueError(
                f"Unknown objective {self.objective!r}; choose one of "
                f"{sorted(losses.POLICY_OBJECTIVES)} or pass policy_objective= to make_ppo."
            )
        if self.network == "minatar_conv" and not self.env_name.endswith("-MinAtar"):
            raise ValueError(
                f"network='minatar_conv' expects a MinAtar grid observation, but env_name is "
                f"{self.env_name!r}; use network='mlp'."
            )
        envs.registry.check_name(self.env_name)


@struct.dataclass
class HParams:
    """Traced hyperparameters of PPO: a batch of these (leading axis) is a sweep."""

    lr: float = 2.5e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    reward_scale: float = 1.0  # rewards are multiplied by this before GAE (brax's reward_scaling)

    def validate(self) -> None:
        """Raises ValueError for concrete values that cannot train (skipped when traced)."""
        checks = {
            "lr": lambda v: v > 0,
            "gamma": lambda v: (v >= 0) & (v <= 1),
            "gae_lambda": lambda v: (v >= 0) & (v <= 1),
            "clip_eps": lambda v: v > 0,
            "ent_coef": lambda v: v >= 0,
            "vf_coef": lambda v: v >= 0,
            "max_grad_norm": lambda v: v > 0,
            "reward_scale": lambda v: v > 0,
        }
        for name, ok in checks.items():
            value = getattr(self, name)
            if isinstance(value, jax.core.Tracer):
                continue
            x = np.asarray(value, np.float64)
            if not bool(np.all(ok(x) & np.isfinite(x))):
                raise ValueError(
                    f"HParams.{name}={value} is out of range or not finite "
                    f"(lr, clip_eps, max_grad_norm, reward_scale > 0; gamma, gae_lambda in [0, 1]; "
                    f"ent_coef, vf_coef >= 0)."
                )


@struct.dataclass
class TrainState:
    """Everything a run carries from one update to the next (the checkpointed state)."""

    params: Any
    opt_state: Any  # `make_optimizer`'s state; its step count drives the lr schedule
    env_state: Any
    obs: jax.Array
    key: jax.Array
    update_idx: jax.Array  # [] int32, updates done so far
    last_return: jax.Array  # [] float32, mean return of the latest finished episodes
    eval_return: jax.Array  # [] float32, mean greedy return of the latest evaluation (0 before one)


class Transition(NamedTuple):
    """One env step of the N environments (leaves [N, ...]; a rollout stacks them to [T, N, ...])."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array
    next_obs: jax.Array  # true successor (the episode's final observation at its last step)
    episode_return: jax.Array
    episode_done: jax.Array


class Batch(NamedTuple):
    """What the loss sees of a rollout, flattened over [T, N] (leaves [T*N, ...], or [M, ...])."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array  # log pi_old(a|s) of the policy that acted
    value: jax.Array  # V_old(s), the centre of the value clipping
    advantage: jax.Array  # GAE advantages, not yet normalised
    target: jax.Array  # value targets: advantage + V_old(s)


class PPORecipe(NamedTuple):
    """The pieces of a PPO run; `train = init` then `num_updates` x `update` in one scan.

    `init(key, hparams, objective_params=None)`, `update(state, hparams, objective_params=None)`,
    `run(state, hparams, objective_params=None, *, num_updates)`,
    `train(key, hparams, objective_params=None)`; `num_updates` = `config.num_updates`, the length
    of a whole run (the lr schedule anneals over it).
    """

    config: PPOConfig
    env: Any
    env_params: Any
    network: ActorCritic
    eval_env: Any  # the raw env (+ ClipAction) that greedy evaluation steps
    init: Callable[..., TrainState]
    update: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    run: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    train: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    num_updates: int


def make_env(config: PPOConfig) -> tuple[Any, Any, bool]:
    """Builds the wrapped environment; returns (env, env_params, discrete)."""
    env, env_params = envs.make(config.env_name, **dict(config.env_kwargs))
    discrete = isinstance(env.action_space(env_params), spaces.Discrete)
    env = wrappers.EpisodeStatistics(env)
    if not discrete:
        env = wrappers.ClipAction(env)
    if config.normalize_obs:
        env = wrappers.NormalizeObservation(env, axis_name=wrappers.ENV_AXIS)
    if config.normalize_reward:
        env = wrappers.NormalizeReward(env, gamma=config.reward_norm_gamma,
                                       axis_name=wrappers.ENV_AXIS)
    return env, env_params, discrete


def make_eval_env(config: PPOConfig) -> tuple[Any, Any]:
    """The env greedy evaluation runs on: the raw env, `ClipAction` for continuous actions.

    No normalisation wrapper: the policy normalises with the training statistics, frozen
    (`policy_act`), and rewards are the env's own.
    """
    env, env_params = envs.make(config.env_name, **dict(config.env_kwargs))
    if not isinstance(env.action_space(env_params), spaces.Discrete):
        env = wrappers.ClipAction(env)
    return env, env_params


def policy_act(
    params: Any, obs_stats: wrappers.RunningMeanStd | None, *, network: ActorCritic
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """`act(obs, key) -> greedy action` of one run's policy, normalising with `obs_stats` if given.

    `obs_stats` is one set of statistics (no env axis), e.g. `single_obs_stats(state.env_state)`.
    """

    def act(obs, key):
        del key
        if obs_stats is not None:
            obs = wrappers.normalize(obs_stats, obs)
        return network.apply(params, obs, method="act")

    return act


def single_obs_stats(env_state: Any) -> wrappers.RunningMeanStd | None:
    """The observation statistics of a run's env batch (pooled, so env 0's equal every env's)."""
    stats = wrappers.observation_stats(env_state)
    return None if stats is None else jax.tree.map(lambda x: x[0], stats)


def evaluate_state(
    state: TrainState, *, config: PPOConfig, eval_env: Any, env_params: Any, network: ActorCritic
) -> tuple[TrainState, jax.Array]:
    """Greedy evaluation of the current policy: `config.eval_episodes` episodes on `eval_env`.

    Returns the state (its key advanced) and the mean undiscounted return of the episodes.
    """
    key, k_eval = jax.random.split(state.key)
    max_steps = config.eval_max_steps or int(env_params.max_steps_in_episode)
    act = policy_act(state.params, single_obs_stats(state.env_state), network=network)
    returns, _ = evaluation.evaluate(
        k_eval, act, eval_env, env_params, num_episodes=config.eval_episodes, max_steps=max_steps
    )
    return state.replace(key=key), jnp.mean(returns)


def make_network(config: PPOConfig, env: Any, env_params: Any, discrete: bool) -> ActorCritic:
    """The actor-critic for the env's observation and action spaces."""
    action_space = env.action_space(env_params)
    return ActorCritic(
        action_dim=action_space.n if discrete else action_space.shape[0],
        discrete=discrete,
        torso=config.network,
        hidden_sizes=config.hidden_sizes,
        activation=config.activation,
        obs_ndim=len(env.observation_space(env_params).shape),
        value_hidden_sizes=config.value_hidden_sizes,
        action_dist=config.action_dist,
    )


def make_lr_schedule(config: PPOConfig, lr: float | jax.Array) -> optax.Schedule:
    """Learning rate as a function of the optimiser's step count c (one step per minibatch).

    With `anneal_lr`: lr_c = lr * (1 - u / num_updates), u = c // (E * K) the update index, so the
    first update uses lr and the last lr / num_updates (PureJaxRL's linear annealing, constant
    within an update); else lr_c = lr.
    """
    if not config.anneal_lr:
        return optax.constant_schedule(lr)
    steps_per_update = config.update_epochs * config.num_minibatches

    def schedule(count: jax.Array) -> jax.Array:
        progress = (count // steps_per_update).astype(jnp.float32) / config.num_updates
        return lr * (1.0 - progress)

    return schedule


def clipped_adam(learning_rate: Any, max_grad_norm: Any) -> optax.GradientTransformation:
    """Global-norm clipping, then Adam (eps = 1e-5, PureJaxRL's), then -learning_rate."""
    return optax.chain(
        optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate, eps=1e-5)
    )


def make_optimizer(config: PPOConfig, hparams: HParams) -> optax.GradientTransformation:
    """PPO's optimiser: `clipped_adam` under `optax.inject_hyperparams`, lr scheduled.

    The learning rate is `make_lr_schedule(config, hparams.lr)`, evaluated at the optimiser's step
    count; the state records the value applied last (`opt_state.hyperparams["learning_rate"]`).
    `max_grad_norm` is passed through unscheduled (`static_args`: not stored in the state), so
    both are traced (a batch of HParams is a sweep) and both come from the `hparams` given to each
    update, not frozen into the state at init.
    """
    return optax.inject_hyperparams(clipped_adam, static_args="max_grad_norm")(
        learning_rate=make_lr_schedule(config, hparams.lr), max_grad_norm=hparams.max_grad_norm
    )


def init_state(
    key: jax.Array, hparams: HParams, objective_params: Any = None, *,
    config: PPOConfig, env: Any, env_params: Any, network: ActorCritic,
) -> TrainState:
    """A fresh run: N reset environments, new network parameters, a fresh optimiser state.

    `objective_params` is unused (kept so every recipe's `init` takes the `run` arguments).
    """
    del objective_params
    key, k_net, k_env = jax.random.split(key, 3)
    reset = jax.vmap(env.reset, in_axes=(0, None), axis_name=wrappers.ENV_AXIS)
    obs, env_state = reset(jax.random.split(k_env, config.num_envs), env_params)
    params = network.init(k_net, obs[0])
    return TrainState(
        params=params,
        opt_state=make_optimizer(config, hparams).init(params),
        env_state=env_state,
        obs=obs,
        key=key,
        update_idx=jnp.int32(0),
        last_return=jnp.float32(0.0),
        eval_return=jnp.float32(0.0),
    )


def rollout(
    state: TrainState, *, config: PPOConfig, env: Any, env_params: Any, network: ActorCritic
) -> tuple[TrainState, Transition]:
    """T steps of the N environments under the current policy.

    Returns:
      the state with the environments, observations and key advanced, and the trajectory
      (`Transition` with leaves [T, N, ...]).
    """
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None), axis_name=wrappers.ENV_AXIS)

    def env_step(carry, _):
        env_state, obs, key = carry
        key, k_act, k_step = jax.random.split(key, 3)
        pi, value = network.apply(state.params, obs)
        action = pi.sample(k_act)  # pre-tanh for a squashed policy; the env gets pi.to_env
        log_prob = pi.log_prob(action)
        next_obs, env_state, reward, terminated, truncated, info = step(
            jax.random.split(k_step, config.num_envs), env_state, pi.to_env(action), env_params
        )
        transition = Transition(
            obs=obs,
            action=action,
            log_prob=log_prob,
            value=value,
            reward=reward.astype(jnp.float32),
            terminated=terminated,
            done=jnp.logical_or(terminated, truncated),
            next_obs=info["final_observation"],
            episode_return=info["episode_return"],
            episode_done=info["episode_done"],
        )
        return (env_state, next_obs, key), transition

    (env_state, obs, key), traj = jax.lax.scan(
        env_step, (state.env_state, state.obs, state.key), None, config.num_steps,
        unroll=config.rollout_unroll,
    )
    return state.replace(env_state=env_state, obs=obs, key=key), traj


def compute_advantages(
    params: Any, traj: Transition, *, network: ActorCritic, gamma: Any, gae_lambda: Any
) -> tuple[jax.Array, jax.Array]:
    """GAE advantages and value targets, each [T, N], of a rollout (`traj` leaves [T, N, ...]).

    One batched critic-only pass (`ActorCritic.value`, no actor forward) gives V(s') for every
    step: the next observation where the episode goes on, the final observation where it was
    truncated (bootstrapped) or terminated (masked out by GAE).
    """
    next_value = network.apply(params, traj.next_obs, method="value")
    return jax.vmap(
        functools.partial(gae_advantages, gamma=gamma, gae_lambda=gae_lambda),
        in_axes=1,
        out_axes=1,
    )(traj.reward, traj.value, next_value, traj.terminated, traj.done)


def ppo_loss(
    params: Any, objective_params: Any, batch: Batch, *,
    network: ActorCritic, policy_objective: losses.PolicyObjective, hparams: HParams,
    progress: jax.Array, lifetime: jax.Array, clip_value: bool = True,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L = L_policy + vf_coef * L_value - ent_coef * H on one minibatch (`batch` leaves [M, ...]).

    Advantages are normalised over the minibatch, (A - mean A) / (std A + 1e-8), with their
    gradient stopped; L_policy is `policy_objective` (which sees `progress` = u / num_updates and
    `lifetime` = num_updates), L_value `losses.clipped_value_loss` (with `clip_value`, else
    0.5 E[(V - G)^2]).

    Returns:
      (loss, metrics): "train/policy_loss", "train/value_loss", "train/entropy",
      "train/approx_kl" (E[r - 1 - log r]) and the objective's metrics, each [] float32.
    """
    pi, value = network.apply(params, batch.obs)
    log_ratio = pi.log_prob(batch.action) - batch.log_prob
    adv = batch.advantage
    adv = jax.lax.stop_gradient((adv - adv.mean()) / (adv.std() + 1e-8))
    policy_loss, policy_metrics = policy_objective(
        objective_params, log_ratio, adv, clip_eps=hparams.clip_eps, progress=progress,
        lifetime=lifetime,
    )
    if clip_value:
        value_loss = losses.clipped_value_loss(
            value, batch.value, batch.target, clip_eps=hparams.clip_eps
        )
    else:
        value_loss = 0.5 * jnp.mean(jnp.square(value - batch.target))
    entropy = losses.entropy_bonus(pi.entropy())
    total = policy_loss + hparams.vf_coef * value_loss - hparams.ent_coef * entropy
    approx_kl = jnp.mean(jnp.exp(log_ratio) - 1.0 - log_ratio)
    metrics = {
        "train/policy_loss": policy_loss,
        "train/value_loss": value_loss,
        "train/entropy": entropy,
        "train/approx_kl": approx_kl,
        **{f"train/{k}": v for k, v in policy_metrics.items()},
    }
    return total, metrics


def shuffle_minibatches(key: jax.Array, batch: Batch, *, num_minibatches: int) -> Batch:
    """One random permutation of the [B] samples, split into K minibatches: leaves [K, B / K, ...]."""
    size = jax.tree.leaves(batch)[0].shape[0]
    perm = jax.random.permutation(key, size)
    return jax.tree.map(
        lambda x: jnp.take(x, perm, axis=0).reshape(
            (num_minibatches, size // num_minibatches) + x.shape[1:]
        ),
        batch,
    )


def minibatch_epochs(
    params: Any, opt_state: Any, key: jax.Array, batch: Batch, objective_params: Any, *,
    config: PPOConfig, tx: optax.GradientTransformation, loss_fn: Callable[..., Any],
) -> tuple[tuple[Any, Any], dict[str, jax.Array]]:
    """E epochs, each one gradient step of `tx` per shuffled minibatch of `batch` ([B, ...]).

    Args:
      loss_fn: `loss_fn(params, objective_params, minibatch) -> (loss, metrics)`.

    Returns:
      (params, opt_state) after E * K steps, and the loss metrics, each [E, K].
    """
    grad_fn = jax.grad(loss_fn, has_aux=True)

    def minibatch_step(carry, minibatch):
        params, opt_state = carry
        grads, metrics = grad_fn(params, objective_params, minibatch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), metrics

    def epoch(carry, k):
        minibatches = shuffle_minibatches(k, batch, num_minibatches=config.num_minibatches)
        return jax.lax.scan(minibatch_step, carry, minibatches)

    return jax.lax.scan(
        epoch, (params, opt_state), jax.random.split(key, config.update_epochs)
    )


def update_step(
    state: TrainState, hparams: HParams, objective_params: Any = None, *,
    config: PPOConfig, env: Any, env_params: Any, network: ActorCritic,
    policy_objective: losses.PolicyObjective,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One PPO update: a rollout of T x N steps, GAE, then E epochs of K minibatch steps.

    Returns:
      the next state and the update's metrics, each []: the loss metrics averaged over the E * K
      steps, "train/episode_return" (mean over the episodes finished in this rollout, else the
      last one), "train/episodes", "train/lr" (the learning rate applied in this update) and
      "train/env_steps".
    """
    progress = state.update_idx.astype(jnp.float32) / config.num_updates
    state, traj = rollout(state, config=config, env=env, env_params=env_params, network=network)
    traj = traj._replace(reward=traj.reward * hparams.reward_scale)
    adv, target = compute_advantages(
        state.params, traj, network=network, gamma=hparams.gamma, gae_lambda=hparams.gae_lambda
    )
    batch = jax.tree.map(
        lambda x: x.reshape((config.batch_size,) + x.shape[2:]),
        Batch(traj.obs, traj.action, traj.log_prob, traj.value, adv, target),
    )
    loss_fn = functools.partial(
        ppo_loss, network=network, policy_objective=policy_objective, hparams=hparams,
        progress=progress, lifetime=jnp.float32(config.num_updates), clip_value=config.clip_value,
    )
    key, k_epochs = jax.random.split(state.key)
    (params, opt_state), metrics = minibatch_epochs(
        state.params, state.opt_state, k_epochs, batch, objective_params,
        config=config, tx=make_optimizer(config, hparams), loss_fn=loss_fn,
    )
    metrics = jax.tree.map(jnp.mean, metrics)

    last_return, num_done = loop.finished_episodes(traj.episode_return, traj.episode_done, state.last_return)
    state = state.replace(
        params=params,
        opt_state=opt_state,
        key=key,
        update_idx=state.update_idx + 1,
        last_return=last_return,
    )
    metrics.update(
        {
            "train/episode_return": last_return,
            "train/episodes": num_done,
            "train/lr": opt_state.hyperparams["learning_rate"],
            "train/env_steps": state.update_idx * config.batch_size,
        }
    )
    return state, metrics


def make_train(
    config: PPOConfig, policy_objective: losses.PolicyObjective | None = None
) -> PPORecipe:
    """Builds the PPO recipe for a static config; validates it before anything is compiled.

    Args:
      config: static settings.
      policy_objective: the policy loss (signature in `lfx.rl.losses`); default
        `losses.POLICY_OBJECTIVES[config.objective]`.

    Returns:
      the `PPORecipe`; `recipe.train(key, hparams, objective_params=None)` is the whole run.
    """
    config.validate()
    objective = policy_objective or losses.POLICY_OBJECTIVES[config.objective]
    env, env_params, discrete = make_env(config)
    network = make_network(config, env, env_params, discrete)
    parts = {"config": config, "env": env, "env_params": env_params, "network": network}
    eval_env, _ = make_eval_env(config)
    init = functools.partial(init_state, **parts)
    update = functools.partial(update_step, **parts, policy_objective=objective)
    evaluate = functools.partial(evaluate_state, config=config, eval_env=eval_env,
                                 env_params=env_params, network=network)
    run = functools.partial(loop.run_updates, update=update, evaluate=evaluate,
                            eval_every=config.eval_every)
    train = functools.partial(loop.train_run, init=init, run=run, num_updates=config.num_updates)
    return PPORecipe(
        config, env, env_params, network, eval_env, init, update, run, train, config.num_updates
    )


make_ppo = make_train
"""Alias of `make_train` (the older name): `make_ppo(config, policy_objective) -> PPORecipe`."""

Config = PPOConfig  # the name `lfx.rl.main` looks up in every recipe module
