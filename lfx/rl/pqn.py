"""The PQN recipe (parallelised Q-network): online Q(lambda) without replay or target network.

    recipe = make_train(PQNConfig())                 # static: shapes, loop lengths, code paths
    state, metrics = recipe.train(key, HParams())    # traced floats: a batch of them is a sweep

PQN (Gallici, Fellows, Ellis, Pou, Masmitja, Foerster, Martin 2024, "Simplifying Deep Temporal
Difference Learning", arXiv:2407.04811; reference code github.com/mttga/purejaxql,
`purejaxql/pqn_gymnax.py`, `pqn_minatar.py`). One update:

1. N vectorised envs act epsilon-greedily for T steps on the current Q (LayerNorm network, no target
   network, no replay buffer); rewards are multiplied by `reward_scale`.
2. Q(lambda) targets, backwards over the rollout, with q'_t = max_a Q(s'_t, a) at the true successor
   s'_t of step t (the final observation where an episode ended):

       G_{T-1} = r_{T-1} + gamma (1 - term_{T-1}) q'_{T-1}
       G_t     = r_t + gamma (1 - term_t) [ (1 - lambda c_t) q'_t + lambda c_t G_{t+1} ],  c_t = 1 - done_t

   so a terminated step is cut (G_t = r_t), a truncated one is bootstrapped from its final
   observation (G_t = r_t + gamma q'_t) and no return leaks across an episode boundary. Away from
   episode ends this is purejaxql's `_get_target`, G_t = r_t + gamma [lambda G_{t+1} + (1 - lambda)
   q'_t]. lambda = 0 is one-step Q-learning, lambda = 1 the discounted return bootstrapped at T.
3. `num_epochs` epochs, each a fresh shuffle of the T*N transitions into `num_minibatches`
   minibatches, one RAdam step (global-norm clipped) per minibatch on 0.5 * mean (Q(s, a) - G)^2,
   the targets fixed for the whole update (computed once, before the epochs, as purejaxql does).

Two documented differences from purejaxql:

* Truncation. purejaxql masks with `done` (terminated or truncated): a time-limit end is treated as
  terminal. lfx bootstraps it from `info["final_observation"]` (`bootstrap_truncation=True`, the
  default). It costs one batched forward pass over the T*N successors per update (which also gives
  every q'_t, so no value is taken from the acting pass); `bootstrap_truncation=False` masks with
  `done`, purejaxql's targets.
* The step before last. purejaxql seeds its backward scan with q' = max_a Q(s_T, a), the bootstrap of
  step T-1, and uses it also for step T-2, whose bootstrap is max_a Q(s_{T-1}, a)
  (mttga/purejaxql issue #12); through lambda the substitution reaches every earlier target. lfx
  uses each step's own successor. `tests/rl/test_rl_pqn.py` checks both: `q_lambda_returns` equals a
  transcription of purejaxql's loop when given purejaxql's q' for step T-2, and the recursion above
  otherwise.

Epsilon decays linearly over updates, eps_start -> eps_end over `eps_decay_fraction` of the run;
with `anneal_lr` the learning rate decays linearly per gradient step to 0 at the end of the run
(purejaxql's `LR_LINEAR_DECAY`, end value 1e-20 there). Defaults are purejaxql's CartPole-v1 config
(`config/alg/pqn_cartpole.yaml`): 32 envs x 64 steps, 4 epochs x 16 minibatches, a (256, 256)
LayerNorm MLP, lr 1e-4, max_grad_norm 10, reward_scale 0.1, gamma 0.99, lambda 0.95, eps 1 -> 0.2
over 20 % of the run, 5e5 steps.

Shapes: T = num_steps, N = num_envs, K = num_minibatches, M = T*N / K, E = num_epochs, A = actions.
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
from lfx.rl import evaluation, loop
from lfx.rl.q_networks import KERNEL_INITS, TORSOS, QNetwork, epsilon_greedy, linear_epsilon


@dataclasses.dataclass(frozen=True)
class PQNConfig:
    """Static settings of a PQN run. Defaults: purejaxql's CartPole-v1 config (module doc)."""

    env_name: str = "CartPole-v1"
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    num_envs: int = 32
    num_steps: int = 64
    total_timesteps: int = 500_000
    num_epochs: int = 4
    num_minibatches: int = 16
    network: str = "mlp"
    hidden_sizes: tuple[int, ...] = (256, 256)
    layer_norm: bool = True
    kernel_init: str = "lecun_normal"
    anneal_lr: bool = True
    bootstrap_truncation: bool = True  # False: mask with done = terminated | truncated (purejaxql)
    eval_every: int = 0  # greedy evaluation after every this many updates (0: none)
    eval_episodes: int = 10
    eval_max_steps: int = 0  # 0: the env's episode length (`max_steps_in_episode`)

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def steps_per_update(self) -> int:
        """Env steps per update, T * N."""
        return self.batch_size

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    def validate(self) -> None:
        """Raises ValueError, saying what to change, for a configuration that cannot run."""
        for name in ("num_envs", "num_steps", "total_timesteps", "num_epochs", "num_minibatches",
                     "eval_episodes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"PQNConfig.{name} must be positive, got {getattr(self, name)}.")
        for name, zero in (("eval_every", "no evaluation"), ("eval_max_steps", "the episode length")):
            if getattr(self, name) < 0:
                raise ValueError(f"PQNConfig.{name} must be >= 0 (0: {zero}), got {getattr(self, name)}.")
        if not self.hidden_sizes or any(int(h) <= 0 for h in self.hidden_sizes):
            raise ValueError(f"PQNConfig.hidden_sizes must be a non-empty tuple of positive widths, "
                             f"e.g. (256, 256); got {self.hidden_sizes!r}.")
        if self.batch_size % self.num_minibatches:
            raise ValueError(f"num_minibatches={self.num_minibatches} does not divide the batch "
                             f"num_envs*num_steps={self.batch_size}; choose a divisor of {self.batch_size}.")
        if self.num_updates < 1:
            raise ValueError(f"total_timesteps={self.total_timesteps} is smaller than one batch "
                             f"({self.batch_size} steps); raise total_timesteps or lower num_envs*num_steps.")
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
    """Traced hyperparameters of PQN: a batch of these (leading axis) is a sweep."""

    lr: float = 1e-4
    gamma: float = 0.99
    td_lambda: float = 0.95
    eps_start: float = 1.0
    eps_end: float = 0.2
    eps_decay_fraction: float = 0.2  # of the run's updates
    max_grad_norm: float = 10.0
    reward_scale: float = 0.1

    def validate(self) -> None:
        """Raises ValueError for concrete values that cannot train (skipped when traced)."""
        checks = {
            "lr": lambda v: v > 0,
            "gamma": lambda v: (v >= 0) & (v <= 1),
            "td_lambda": lambda v: (v >= 0) & (v <= 1),
            "eps_start": lambda v: (v >= 0) & (v <= 1),
            "eps_end": lambda v: (v >= 0) & (v <= 1),
            "eps_decay_fraction": lambda v: (v >= 0) & (v <= 1),
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
                    f"HParams.{name}={value} is out of range or not finite (lr, max_grad_norm, "
                    f"reward_scale > 0; gamma, td_lambda, eps_start, eps_end, eps_decay_fraction in [0, 1])."
                )


class Transition(NamedTuple):
    """One env step of the N envs (leaves [N, ...]; a rollout stacks them to [T, N, ...])."""

    obs: jax.Array
    action: jax.Array  # int32
    reward: jax.Array  # float32, already multiplied by reward_scale
    terminated: jax.Array  # float32
    done: jax.Array  # float32, terminated | truncated
    next_obs: jax.Array  # the true successor (the final observation at an episode's last step)
    episode_return: jax.Array  # unscaled, on the step that ended an episode (else 0)
    episode_done: jax.Array


@struct.dataclass
class TrainState:
    """Everything a run carries from one update to the next (the checkpointed state)."""

    params: Any
    opt_state: Any  # its step count drives the lr schedule
    env_state: Any
    obs: jax.Array
    key: jax.Array
    update_idx: jax.Array  # [] int32, updates done so far
    last_return: jax.Array  # [] float32, mean return of the latest finished episodes
    eval_return: jax.Array  # [] float32, mean greedy return of the latest evaluation (0 before one)


class PQNRecipe(NamedTuple):
    """The pieces of a PQN run: `train(key, hparams) = run(init(key, hparams), hparams, num_updates=)`."""

    config: PQNConfig
    env: Any
    env_params: Any
    network: QNetwork
    eval_env: Any
    init: Callable[..., TrainState]
    update: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    run: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    train: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    num_updates: int


def q_lambda_returns(reward: jax.Array, terminated: jax.Array, done: jax.Array, next_q: jax.Array, *,
                     gamma: Any, td_lambda: Any) -> jax.Array:
    """Q(lambda) targets G [T, ...] from rewards, masks and q'_t = max_a Q(s'_t, a), each [T, ...].

    The recursion of the module docstring, by a reverse `lax.scan`; `terminated` cuts the bootstrap,
    `done` (terminated or truncated) cuts the lambda-mixing with the next step's return.
    """
    def step(g_next, x):
        r, term, d, q = x
        cont = 1.0 - d
        g = r + gamma * (1.0 - term) * ((1.0 - td_lambda * cont) * q + td_lambda * cont * g_next)
        return g, g

    # G_T := q'_{T-1} makes the last step r + gamma (1 - term) q'_{T-1} for any lambda.
    _, returns = jax.lax.scan(step, next_q[-1], (reward, terminated, done, next_q), reverse=True)
    return returns


def make_env(config: PQNConfig) -> tuple[Any, Any]:
    """The training env: `lfx.envs.make` + `EpisodeStatistics`; discrete actions only."""
    env, env_params = envs.make(config.env_name, **dict(config.env_kwargs))
    if not isinstance(env.action_space(env_params), spaces.Discrete):
        raise ValueError(f"PQN needs discrete actions; {config.env_name} has "
                         f"{type(env.action_space(env_params)).__name__} actions.")
    return wrappers.EpisodeStatistics(env), env_params


def make_network(config: PQNConfig, env: Any, env_params: Any) -> QNetwork:
    return QNetwork(
        action_dim=env.action_space(env_params).n, torso=config.network,
        hidden_sizes=config.hidden_sizes, layer_norm=config.layer_norm,
        kernel_init=config.kernel_init, obs_ndim=len(env.observation_space(env_params).shape),
    )


def make_optimizer(config: PQNConfig, hparams: HParams) -> optax.GradientTransformation:
    """Global-norm clipping then RAdam (purejaxql's), the lr linear in the gradient-step count c.

    With `anneal_lr`: lr_c = lr * (1 - c / (num_updates * E * K)), reaching 0 after the run's last
    step; else constant. The count lives in the optimiser state; the values come from `hparams`.
    """
    total = config.num_updates * config.num_epochs * config.num_minibatches
    if config.anneal_lr:
        def learning_rate(count):
            return hparams.lr * (1.0 - jnp.minimum(count.astype(jnp.float32) / total, 1.0))
    else:
        learning_rate = hparams.lr
    return optax.chain(optax.clip_by_global_norm(hparams.max_grad_norm), optax.radam(learning_rate))


def current_lr(config: PQNConfig, hparams: HParams, count: jax.Array) -> jax.Array:
    """The lr `make_optimizer` applies at gradient step `count` (for the metrics)."""
    if not config.anneal_lr:
        return jnp.asarray(hparams.lr, jnp.float32)
    total = config.num_updates * config.num_epochs * config.num_minibatches
    return hparams.lr * (1.0 - jnp.minimum(count.astype(jnp.float32) / total, 1.0))


def epsilon_at(update_idx: jax.Array, hparams: HParams, num_updates: int) -> jax.Array:
    """Epsilon of update `update_idx`: linear from eps_start to eps_end over the decay fraction."""
    progress = update_idx.astype(jnp.float32) / num_updates
    return linear_epsilon(hparams.eps_start, hparams.eps_end, hparams.eps_decay_fraction, progress)


def init_state(key: jax.Array, hparams: HParams, *, config: PQNConfig, env: Any, env_params: Any,
               network: QNetwork) -> TrainState:
    """A fresh run: N reset envs, new parameters, a fresh optimiser state."""
    key, k_net, k_env = jax.random.split(key, 3)
    reset = jax.vmap(env.reset, in_axes=(0, None), axis_name=wrappers.ENV_AXIS)
    obs, env_state = reset(jax.random.split(k_env, config.num_envs), env_params)
    params = network.init(k_net, obs[0])
    return TrainState(
        params=params, opt_state=make_optimizer(config, hparams).init(params), env_state=env_state,
        obs=obs, key=key, update_idx=jnp.int32(0), last_return=jnp.float32(0.0),
        eval_return=jnp.float32(0.0),
    )


def rollout(state: TrainState, hparams: HParams, eps: jax.Array, *, config: PQNConfig, env: Any,
            env_params: Any, network: QNetwork) -> tuple[TrainState, Transition]:
    """T epsilon-greedy steps of the N envs; returns the advanced state and the trajectory [T, N, ...]."""
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None), axis_name=wrappers.ENV_AXIS)

    def env_step(carry, _):
        env_state, obs, key = carry
        key, k_act, k_step = jax.random.split(key, 3)
        action = epsilon_greedy(k_act, network.apply(state.params, obs), eps)
        next_obs, env_state, reward, terminated, truncated, info = step(
            jax.random.split(k_step, config.num_envs), env_state, action, env_params)
        transition = Transition(
            obs=obs, action=action, reward=reward.astype(jnp.float32) * hparams.reward_scale,
            terminated=terminated.astype(jnp.float32),
            done=jnp.logical_or(terminated, truncated).astype(jnp.float32),
            next_obs=info["final_observation"], episode_return=info["episode_return"],
            episode_done=info["episode_done"],
        )
        return (env_state, next_obs, key), transition

    (env_state, obs, key), traj = jax.lax.scan(
        env_step, (state.env_state, state.obs, state.key), None, config.num_steps)
    return state.replace(env_state=env_state, obs=obs, key=key), traj


def compute_targets(params: Any, traj: Transition, hparams: HParams, *, config: PQNConfig,
                    network: QNetwork) -> jax.Array:
    """Q(lambda) targets [T, N] of a rollout: one batched pass for q'_t = max_a Q(s'_t, a)."""
    next_q = jnp.max(network.apply(params, traj.next_obs), axis=-1)
    terminated = traj.terminated if config.bootstrap_truncation else traj.done
    return q_lambda_returns(traj.reward, terminated, traj.done, next_q, gamma=hparams.gamma,
                            td_lambda=hparams.td_lambda)


def td_loss(params: Any, obs: jax.Array, action: jax.Array, target: jax.Array, *, network: QNetwork
            ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """0.5 * mean (Q(s, a) - G)^2 on one minibatch ([M, ...]); returns (loss, metrics)."""
    q = network.apply(params, obs)
    q_sa = jnp.take_along_axis(q, action[:, None].astype(jnp.int32), axis=-1)[:, 0]
    loss = 0.5 * jnp.mean(jnp.square(q_sa - target))
    return loss, {"train/td_loss": loss, "train/q_mean": jnp.mean(q_sa)}


def update_step(state: TrainState, hparams: HParams, *, config: PQNConfig, env: Any, env_params: Any,
                network: QNetwork) -> tuple[TrainState, dict[str, jax.Array]]:
    """One PQN update: a T x N rollout, Q(lambda) targets, E epochs of K minibatch steps.

    Metrics, each []: "train/td_loss", "train/q_mean" (means over the E * K steps), "train/epsilon",
    "train/lr" (at the update's last gradient step), "train/episode_return" (mean over the episodes
    finished in this rollout, else the previous value), "train/episodes", "train/env_steps".
    """
    eps = epsilon_at(state.update_idx, hparams, config.num_updates)
    state, traj = rollout(state, hparams, eps, config=config, env=env, env_params=env_params,
                          network=network)
    targets = compute_targets(state.params, traj, hparams, config=config, network=network)
    data = jax.tree.map(lambda x: x.reshape((config.batch_size,) + x.shape[2:]),
                        (traj.obs, traj.action, targets))
    tx = make_optimizer(config, hparams)
    grad_fn = jax.grad(functools.partial(td_loss, network=network), has_aux=True)

    def minibatch_step(carry, mb):
        params, opt_state = carry
        grads, metrics = grad_fn(params, *mb)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), metrics

    def epoch(carry, k):
        perm = jax.random.permutation(k, config.batch_size)
        mbs = jax.tree.map(lambda x: jnp.take(x, perm, axis=0).reshape(
            (config.num_minibatches, config.minibatch_size) + x.shape[1:]), data)
        return jax.lax.scan(minibatch_step, carry, mbs)

    key, k_epochs = jax.random.split(state.key)
    (params, opt_state), metrics = jax.lax.scan(
        epoch, (state.params, state.opt_state), jax.random.split(k_epochs, config.num_epochs))
    metrics = jax.tree.map(jnp.mean, metrics)

    last_return, num_done = loop.finished_episodes(traj.episode_return, traj.episode_done, state.last_return)
    grad_count = (state.update_idx + 1) * config.num_epochs * config.num_minibatches
    state = state.replace(params=params, opt_state=opt_state, key=key,
                          update_idx=state.update_idx + 1, last_return=last_return)
    metrics.update({
        "train/epsilon": eps,
        "train/lr": current_lr(config, hparams, grad_count - 1),
        "train/episode_return": last_return,
        "train/episodes": num_done,
        "train/env_steps": state.update_idx * config.batch_size,
    })
    return state, metrics


def make_eval_env(config: PQNConfig) -> tuple[Any, Any]:
    """The raw env greedy evaluation steps (no wrapper: rewards are the env's own, unscaled)."""
    return envs.make(config.env_name, **dict(config.env_kwargs))


def evaluate_state(state: TrainState, *, config: PQNConfig, eval_env: Any, env_params: Any,
                   network: QNetwork) -> tuple[TrainState, jax.Array]:
    """Greedy (eps = 0, purejaxql's EPS_TEST) evaluation: returns (state, mean return)."""
    key, k_eval = jax.random.split(state.key)
    max_steps = config.eval_max_steps or int(env_params.max_steps_in_episode)
    params = state.params

    def act(obs, k):
        del k
        return network.apply(params, obs, method="act")

    returns, _ = evaluation.evaluate(k_eval, act, eval_env, env_params,
                                     num_episodes=config.eval_episodes, max_steps=max_steps)
    return state.replace(key=key), jnp.mean(returns)


def make_train(config: PQNConfig) -> PQNRecipe:
    """Builds the PQN recipe for a static config; validates it before anything is compiled."""
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
    return PQNRecipe(config, env, env_params, network, eval_env, init, update, run, train,
                     config.num_updates)


Config = PQNConfig  # the name `lfx.rl.main` looks up in every recipe module
