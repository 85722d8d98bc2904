"""The DQN recipe: a whole training run (replay buffer included) as one jittable, vmappable function.

    recipe = make_train(DQNConfig())                 # static: shapes, loop lengths, code paths
    state, metrics = recipe.train(key, HParams())    # traced floats: a batch of them is a sweep

DQN (Mnih et al. 2015, "Human-level control through deep reinforcement learning", Nature 518),
in the layout of PureJaxRL's `dqn.py` (Lu et al. 2022, arXiv:2210.05639; itself CleanRL's
`dqn_jax.py`): N vectorised environments act epsilon-greedily, every transition goes into a uniform
replay buffer (`lfx.rl.replay`), and gradient steps on sampled minibatches regress

    Q(s, a)  onto  y = r + gamma * (1 - terminated) * Q_target(s', argmax_a' Q_sel(s', a'))

with Q_sel = Q_target (DQN) or the online Q (double DQN, van Hasselt et al. 2016,
arXiv:1509.06461). s' is the true successor: at the last step of an episode it is
`info["final_observation"]`, so a truncated episode (CartPole's 500-step limit) is bootstrapped and
only a terminated one is cut. The loss is the mean squared error (PureJaxRL's; no 1/2) or the Huber
loss (delta = 1, Mnih et al.'s error clipping). Every `target_update_every` updates the target
moves towards the online parameters, theta' <- tau * theta + (1 - tau) * theta' (tau = 1: a copy).

One update = `num_steps` env steps of the N envs (T x N transitions added to the buffer), then
`gradient_steps` minibatch steps of `batch_size` if more than `learning_starts` env steps have been
taken (and the buffer holds a minibatch), then the target update. Epsilon decays linearly in the
env steps taken, from eps_start to eps_end over `eps_decay_fraction` of `total_timesteps`.

Defaults are PureJaxRL's CartPole-v1 settings: 10 envs, a 10 000-transition buffer, minibatches of
128, one gradient step per 10 env steps, learning after 10 000 steps, a target copy every 500 env
steps, lr 2.5e-4 (Adam), eps 1 -> 0.05 over half the run, MSE, a (120, 84) ReLU MLP, 5e5 steps.
PureJaxRL interleaves one env step of the 10 envs with one gradient step; lfx groups 10 of each
per update (`num_steps=10, gradient_steps=10, target_update_every=5`), which keeps the metrics at
one row per 100 env steps; `num_steps=1, gradient_steps=1, target_update_every=50` is the exact
interleaving.

Shapes: T = num_steps, N = num_envs, B = batch_size, G = gradient_steps, A = actions.
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
from lfx.rl.q_networks import KERNEL_INITS, TORSOS, QNetwork, epsilon_greedy, linear_epsilon

LOSSES = ("mse", "huber")


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """Static settings of a DQN run. Defaults: PureJaxRL's CartPole-v1 settings (module doc)."""

    env_name: str = "CartPole-v1"
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    num_envs: int = 10
    num_steps: int = 10  # env steps per env per update
    total_timesteps: int = 500_000
    buffer_size: int = 10_000
    learning_starts: int = 10_000  # env steps before the first gradient step
    batch_size: int = 128
    gradient_steps: int = 10  # minibatch steps per update
    target_update_every: int = 5  # updates between target updates
    network: str = "mlp"
    hidden_sizes: tuple[int, ...] = (120, 84)
    layer_norm: bool = False
    kernel_init: str = "lecun_normal"
    double_dqn: bool = False
    loss: str = "mse"
    eval_every: int = 0  # greedy evaluation after every this many updates (0: none)
    eval_episodes: int = 10
    eval_max_steps: int = 0  # 0: the env's episode length (`max_steps_in_episode`)

    @property
    def steps_per_update(self) -> int:
        """Env steps per update, T * N."""
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.steps_per_update

    def validate(self) -> None:
        """Raises ValueError, saying what to change, for a configuration that cannot run."""
        for name in ("num_envs", "num_steps", "total_timesteps", "buffer_size", "batch_size",
                     "gradient_steps", "target_update_every", "eval_episodes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"DQNConfig.{name} must be positive, got {getattr(self, name)}.")
        for name, zero in (("learning_starts", "learn from the first update"),
                           ("eval_every", "no evaluation"), ("eval_max_steps", "the episode length")):
            if getattr(self, name) < 0:
                raise ValueError(f"DQNConfig.{name} must be >= 0 (0: {zero}), got {getattr(self, name)}.")
        if not self.hidden_sizes or any(int(h) <= 0 for h in self.hidden_sizes):
            raise ValueError(f"DQNConfig.hidden_sizes must be a non-empty tuple of positive widths, "
                             f"e.g. (120, 84); got {self.hidden_sizes!r}.")
        if self.num_updates < 1:
            raise ValueError(f"total_timesteps={self.total_timesteps} is smaller than one update "
                             f"(num_envs*num_steps={self.steps_per_update} steps); raise total_timesteps.")
        if self.buffer_size < self.steps_per_update:
            raise ValueError(f"buffer_size={self.buffer_size} cannot hold one update's "
                             f"num_envs*num_steps={self.steps_per_update} transitions; raise buffer_size "
                             f"or lower num_envs*num_steps.")
        if self.learning_starts >= self.num_updates * self.steps_per_update:
            raise ValueError(f"learning_starts={self.learning_starts} is not below the run's "
                             f"{self.num_updates * self.steps_per_update} env steps: the agent would "
                             f"never learn; lower learning_starts or raise total_timesteps.")
        if self.loss not in LOSSES:
            raise ValueError(f"Unknown loss {self.loss!r}; choose one of {LOSSES}.")
        if self.network not in TORSOS:
            raise ValueError(f"Unknown network {self.network!r}; choose one of {TORSOS}.")
        if self.kernel_init not in KERNEL_INITS:
            raise ValueError(f"Unknown kernel_init {self.kernel_init!r}; choose one of {sorted(KERNEL_INITS)}.")
        if self.network == "minatar_conv" and not self.env_name.endswith("-MinAtar"):
            raise ValueError(f"network='minatar_conv' expects a MinAtar grid observation, but env_name "
                             f"is {self.env_name!r}; use network='mlp'.")
        envs.registry.check_name(self.env_name)


@struct.dataclass
class HParams:
    """Traced hyperparameters of DQN: a batch of these (leading axis) is a sweep."""

    lr: float = 2.5e-4
    gamma: float = 0.99
    tau: float = 1.0  # target update theta' <- tau theta + (1 - tau) theta'; 1 = hard copy
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_decay_fraction: float = 0.5  # of total_timesteps
    max_grad_norm: float = 1e9  # global-norm clipping; PureJaxRL clips nothing (1e9 never binds)

    def validate(self) -> None:
        """Raises ValueError for concrete values that cannot train (skipped when traced)."""
        checks = {
            "lr": lambda v: v > 0,
            "gamma": lambda v: (v >= 0) & (v <= 1),
            "tau": lambda v: (v > 0) & (v <= 1),
            "eps_start": lambda v: (v >= 0) & (v <= 1),
            "eps_end": lambda v: (v >= 0) & (v <= 1),
            "eps_decay_fraction": lambda v: (v >= 0) & (v <= 1),
            "max_grad_norm": lambda v: v > 0,
        }
        for name, ok in checks.items():
            value = getattr(self, name)
            if isinstance(value, jax.core.Tracer):
                continue
            x = np.asarray(value, np.float64)
            if not bool(np.all(ok(x) & np.isfinite(x))):
                raise ValueError(
                    f"HParams.{name}={value} is out of range or not finite (lr, max_grad_norm > 0; "
                    f"tau in (0, 1]; gamma, eps_start, eps_end, eps_decay_fraction in [0, 1])."
                )


class Transition(NamedTuple):
    """One stored transition (a buffer holds leaves [capacity, ...]; a rollout [T, N, ...])."""

    obs: jax.Array
    action: jax.Array  # int32
    reward: jax.Array  # float32
    terminated: jax.Array  # float32, 1 where the episode ended in a terminal state
    next_obs: jax.Array  # the true successor (the final observation at an episode's last step)


@struct.dataclass
class TrainState:
    """Everything a run carries from one update to the next (the checkpointed state)."""

    params: Any
    target_params: Any
    opt_state: Any
    buffer: replay.ReplayBuffer
    env_state: Any
    obs: jax.Array
    key: jax.Array
    update_idx: jax.Array  # [] int32, updates done so far
    last_return: jax.Array  # [] float32, mean return of the latest finished episodes
    eval_return: jax.Array  # [] float32, mean greedy return of the latest evaluation (0 before one)


class DQNRecipe(NamedTuple):
    """The pieces of a DQN run: `train(key, hparams) = run(init(key, hparams), hparams, num_updates=)`."""

    config: DQNConfig
    env: Any
    env_params: Any
    network: QNetwork
    eval_env: Any
    init: Callable[..., TrainState]
    update: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    run: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    train: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    num_updates: int


def make_env(config: DQNConfig) -> tuple[Any, Any]:
    """The training env: `lfx.envs.make` + `EpisodeStatistics`; discrete actions only."""
    env, env_params = envs.make(config.env_name, **dict(config.env_kwargs))
    if not isinstance(env.action_space(env_params), spaces.Discrete):
        raise ValueError(f"DQN needs discrete actions; {config.env_name} has "
                         f"{type(env.action_space(env_params)).__name__} actions.")
    return wrappers.EpisodeStatistics(env), env_params


def make_network(config: DQNConfig, env: Any, env_params: Any) -> QNetwork:
    return QNetwork(
        action_dim=env.action_space(env_params).n, torso=config.network,
        hidden_sizes=config.hidden_sizes, layer_norm=config.layer_norm,
        kernel_init=config.kernel_init, obs_ndim=len(env.observation_space(env_params).shape),
    )


def make_optimizer(hparams: HParams) -> optax.GradientTransformation:
    """Global-norm clipping then Adam (optax's eps 1e-8, PureJaxRL's), both from the traced hparams.

    The state holds no hyperparameter, so the optimiser can be rebuilt from each update's hparams.
    """
    return optax.chain(optax.clip_by_global_norm(hparams.max_grad_norm), optax.adam(hparams.lr))


def td_target(q_next_target: jax.Array, q_next_online: jax.Array, reward: jax.Array,
              terminated: jax.Array, *, gamma: Any, double_dqn: bool) -> jax.Array:
    """y [B] = r + gamma (1 - terminated) Q_target(s', a*), from Q-values [B, A] at s'.

    a* = argmax Q_target(s', .) (DQN) or argmax Q_online(s', .) (double DQN).
    """
    select = q_next_online if double_dqn else q_next_target
    a_star = jnp.argmax(select, axis=-1)
    bootstrap = jnp.take_along_axis(q_next_target, a_star[:, None], axis=-1)[:, 0]
    return reward + gamma * (1.0 - terminated) * bootstrap


def q_loss(params: Any, target_params: Any, batch: Transition, *, network: QNetwork, gamma: Any,
           loss: str, double_dqn: bool) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The TD regression loss on one minibatch (`batch` leaves [B, ...]); the target's gradient is stopped.

    mse: mean (Q(s, a) - y)^2; huber: mean huber_1(Q(s, a) - y) (0.5 x^2 for |x| <= 1, |x| - 0.5 beyond).
    Returns (loss, {"train/q_loss", "train/q_mean"}).
    """
    q_next_target = network.apply(target_params, batch.next_obs)
    q_next_online = network.apply(params, batch.next_obs) if double_dqn else q_next_target
    y = jax.lax.stop_gradient(td_target(q_next_target, q_next_online, batch.reward, batch.terminated,
                                        gamma=gamma, double_dqn=double_dqn))
    q = network.apply(params, batch.obs)
    q_sa = jnp.take_along_axis(q, batch.action[:, None].astype(jnp.int32), axis=-1)[:, 0]
    err = q_sa - y
    value = jnp.mean(jnp.square(err)) if loss == "mse" else jnp.mean(optax.huber_loss(err, delta=1.0))
    return value, {"train/q_loss": value, "train/q_mean": jnp.mean(q_sa)}


def epsilon_at(env_steps: jax.Array, hparams: HParams, total_timesteps: int) -> jax.Array:
    """Epsilon after `env_steps` env steps: linear from eps_start to eps_end over the decay fraction."""
    progress = env_steps.astype(jnp.float32) / total_timesteps
    return linear_epsilon(hparams.eps_start, hparams.eps_end, hparams.eps_decay_fraction, progress)


def init_state(key: jax.Array, hparams: HParams, *, config: DQNConfig, env: Any, env_params: Any,
               network: QNetwork) -> TrainState:
    """A fresh run: N reset envs, new parameters (the target a copy), an empty buffer."""
    key, k_net, k_env = jax.random.split(key, 3)
    reset = jax.vmap(env.reset, in_axes=(0, None), axis_name=wrappers.ENV_AXIS)
    obs, env_state = reset(jax.random.split(k_env, config.num_envs), env_params)
    params = network.init(k_net, obs[0])
    example = Transition(obs[0], jnp.int32(0), jnp.float32(0.0), jnp.float32(0.0), obs[0])
    return TrainState(
        params=params,
        target_params=jax.tree.map(jnp.copy, params),
        opt_state=make_optimizer(hparams).init(params),
        buffer=replay.init(example, config.buffer_size),
        env_state=env_state,
        obs=obs,
        key=key,
        update_idx=jnp.int32(0),
        last_return=jnp.float32(0.0),
        eval_return=jnp.float32(0.0),
    )


def rollout(state: TrainState, hparams: HParams, *, config: DQNConfig, env: Any, env_params: Any,
            network: QNetwork) -> tuple[TrainState, Transition, dict[str, jax.Array]]:
    """T epsilon-greedy steps of the N envs.

    Returns the state (envs, observations, key advanced), the transitions (leaves [T, N, ...]) and
    the episode statistics {"episode_return", "episode_done", "epsilon"} ([T, N], [T, N], [T]).
    """
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None), axis_name=wrappers.ENV_AXIS)
    first = state.update_idx * config.steps_per_update

    def env_step(carry, t):
        env_state, obs, key = carry
        key, k_act, k_step = jax.random.split(key, 3)
        eps = epsilon_at(first + t * config.num_envs, hparams, config.total_timesteps)
        action = epsilon_greedy(k_act, network.apply(state.params, obs), eps)
        next_obs, env_state, reward, terminated, _, info = step(
            jax.random.split(k_step, config.num_envs), env_state, action, env_params)
        transition = Transition(obs, action, reward.astype(jnp.float32),
                                terminated.astype(jnp.float32), info["final_observation"])
        stats = {"episode_return": info["episode_return"], "episode_done": info["episode_done"],
                 "epsilon": eps}
        return (env_state, next_obs, key), (transition, stats)

    (env_state, obs, key), (traj, stats) = jax.lax.scan(
        env_step, (state.env_state, state.obs, state.key), jnp.arange(config.num_steps))
    return state.replace(env_state=env_state, obs=obs, key=key), traj, stats


def gradient_steps(params: Any, opt_state: Any, target_params: Any, buffer: replay.ReplayBuffer,
                   key: jax.Array, hparams: HParams, *, config: DQNConfig, network: QNetwork
                   ) -> tuple[tuple[Any, Any], dict[str, jax.Array]]:
    """G minibatch steps, each on `batch_size` transitions sampled uniformly from the buffer.

    Returns (params, opt_state) and the loss metrics, each [G].
    """
    tx = make_optimizer(hparams)
    grad_fn = jax.grad(functools.partial(q_loss, network=network, gamma=hparams.gamma, loss=config.loss,
                                         double_dqn=config.double_dqn), has_aux=True)

    def one(carry, k):
        params, opt_state = carry
        batch = replay.sample(buffer, k, config.batch_size)
        grads, metrics = grad_fn(params, target_params, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), metrics

    return jax.lax.scan(one, (params, opt_state), jax.random.split(key, config.gradient_steps))


def update_step(state: TrainState, hparams: HParams, *, config: DQNConfig, env: Any, env_params: Any,
                network: QNetwork) -> tuple[TrainState, dict[str, jax.Array]]:
    """One update: a T x N rollout into the buffer, G gradient steps once learning started, the target update.

    Metrics, each []: "train/q_loss", "train/q_mean" (means over the G steps; 0 before learning),
    "train/learning" (1 if this update took gradient steps), "train/epsilon" (at the rollout's
    last step), "train/episode_return" (mean over the episodes finished in this rollout, else the
    previous value), "train/episodes", "train/env_steps".
    """
    state, traj, stats = rollout(state, hparams, config=config, env=env, env_params=env_params,
                                 network=network)
    flat = jax.tree.map(lambda x: x.reshape((config.steps_per_update,) + x.shape[2:]), traj)
    buffer = replay.add(state.buffer, flat)
    env_steps = (state.update_idx + 1) * config.steps_per_update
    learning = (env_steps > config.learning_starts) & (buffer.size >= config.batch_size)
    key, k_learn = jax.random.split(state.key)

    def learn(operand):
        params, opt_state = operand
        (params, opt_state), metrics = gradient_steps(
            params, opt_state, state.target_params, buffer, k_learn, hparams, config=config,
            network=network)
        return (params, opt_state), jax.tree.map(jnp.mean, metrics)

    def skip(operand):
        return operand, {"train/q_loss": jnp.float32(0.0), "train/q_mean": jnp.float32(0.0)}

    (params, opt_state), metrics = jax.lax.cond(learning, learn, skip, (state.params, state.opt_state))
    update_target = (state.update_idx + 1) % config.target_update_every == 0
    target_params = jax.tree.map(
        lambda new, old: jnp.where(update_target, hparams.tau * new + (1.0 - hparams.tau) * old, old),
        params, state.target_params)

    last_return, num_done = loop.finished_episodes(stats["episode_return"], stats["episode_done"], state.last_return)
    state = state.replace(params=params, target_params=target_params, opt_state=opt_state,
                          buffer=buffer, key=key, update_idx=state.update_idx + 1,
                          last_return=last_return)
    metrics.update({
        "train/learning": learning.astype(jnp.float32),
        "train/epsilon": stats["epsilon"][-1],
        "train/episode_return": last_return,
        "train/episodes": num_done,
        "train/env_steps": env_steps,
    })
    return state, metrics


def make_eval_env(config: DQNConfig) -> tuple[Any, Any]:
    """The raw env greedy evaluation steps (no wrapper: rewards are the env's own)."""
    return envs.make(config.env_name, **dict(config.env_kwargs))


def evaluate_state(state: TrainState, *, config: DQNConfig, eval_env: Any, env_params: Any,
                   network: QNetwork) -> tuple[TrainState, jax.Array]:
    """Greedy (eps = 0) evaluation: `eval_episodes` episodes; returns (state, mean return)."""
    key, k_eval = jax.random.split(state.key)
    max_steps = config.eval_max_steps or int(env_params.max_steps_in_episode)
    params = state.params

    def act(obs, k):
        del k
        return network.apply(params, obs, method="act")

    returns, _ = evaluation.evaluate(k_eval, act, eval_env, env_params,
                                     num_episodes=config.eval_episodes, max_steps=max_steps)
    return state.replace(key=key), jnp.mean(returns)


def make_train(config: DQNConfig) -> DQNRecipe:
    """Builds the DQN recipe for a static config; validates it before anything is compiled."""
    config.validate()
    env, env_params = make_env(config)
    network = make_network(config, env, env_params)
    eval_env, _ = make_eval_env(config)
    parts = {"config": config, "env": env, "env_params": env_params, "network": network}
    init = functools.partial(init_state, **parts)
    update = functools.partial(update_step, **parts)
    evaluate = functools.partial(evaluate_state, config=config, eval_env=eval_env,
                                 env_params=env_params, network=network)
    run = functools.partial(loop.run_updates, update=update, evaluate=evaluate, eval_every=config.eval_every)
    train = functools.partial(loop.train_run, init=init, run=run, num_updates=config.num_updates)
    return DQNRecipe(config, env, env_params, network, eval_env, init, update, run, train,
                     config.num_updates)


Config = DQNConfig  # the name `lfx.rl.main` looks up in every recipe module
