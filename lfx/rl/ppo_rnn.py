"""Recurrent PPO: PPO with a GRU actor-critic, for partially observable tasks, as one scan.

    recipe = make_train(RecurrentPPOConfig(env_name="MemoryChain-bsuite"))
    state, metrics = recipe.train(key, hparams)                 # metrics[k]: [num_updates]
    sweep = jax.jit(jax.vmap(jax.vmap(recipe.train, (0, None)), (None, 0)))

PPO (Schulman et al. 2017, arXiv:1707.06347) with PureJaxRL's recurrent layout (Lu et al. 2022,
arXiv:2210.05639, `purejaxrl/ppo_rnn.py`; defaults are its config): the GRU hidden state h is
carried through the rollout and reset to zeros before the first observation of every episode
(`lfx.rl.recurrent`); the hidden state at the start of each rollout, h_0 [N, H], is stored; the update
re-runs the GRU from h_0 over each env's whole sequence of T steps, so minibatches split the N
environments (K minibatches of N / K whole sequences, [T, N / K]), never time. At the first
minibatch step the re-run reproduces the rollout's log-probabilities and values (ratio = 1).

Everything else is `lfx.rl.ppo`'s: GAE (`lfx.rl.gae`, bootstrapping through truncation from
V(s'_t) = V(GRU(h_t, s'_t)), the true successor under the same episode's memory), the clipped loss
(`ppo.ppo_loss`, here over [M, T] minibatches), E epochs of K shuffled minibatches
(`ppo.minibatch_epochs`), Adam with global-norm clipping and linear lr annealing
(`ppo.make_optimizer`), `ppo.HParams`.

Shapes: T = num_steps, N = num_envs, H = hidden_size, K = num_minibatches, M = N / K envs per
minibatch, E = update_epochs. Rollout leaves are [T, N, ...]; the loss's batch is env-major
[N, T, ...] (so `ppo.shuffle_minibatches` permutes environments).
Partial observability: `obs_mask` keeps some observation dimensions (`lfx.envs.partial`), e.g.
CartPole-v1 with `obs_mask=(0, 2)` (x and theta, no velocities).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

from lfx import envs
from lfx.envs import wrappers
from lfx.envs.partial import MaskObservation, check_keep
from lfx.rl import evaluation, loop, losses, ppo
from lfx.rl.gae import gae_advantages
from lfx.rl.networks import ACTIVATIONS
from lfx.rl.recurrent import ActorCriticRNN, initialize_carry

HParams = ppo.HParams  # lr, gamma, gae_lambda, clip_eps, ent_coef, vf_coef, max_grad_norm, reward_scale


@dataclasses.dataclass(frozen=True)
class RecurrentPPOConfig:
    """Static settings of a recurrent PPO run. Defaults: PureJaxRL's `ppo_rnn.py` config."""

    env_name: str = "CartPole-v1"
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    obs_mask: tuple[int, ...] = ()  # observation indices the agent sees; () = all
    num_envs: int = 4
    num_steps: int = 128
    total_timesteps: int = 500_000
    update_epochs: int = 4
    num_minibatches: int = 4  # splits the num_envs sequences (must divide num_envs)
    hidden_size: int = 128  # the GRU's width
    embed_size: int = 128
    head_size: int = 128
    activation: str = "relu"
    memory: bool = True  # False: hidden state reset every step (feed-forward ablation)
    clip_value: bool = True
    anneal_lr: bool = True
    objective: str = "ppo_clip"
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
        return self.batch_size

    @property
    def envs_per_minibatch(self) -> int:
        return self.num_envs // self.num_minibatches

    def validate(self) -> None:
        """Raises ValueError, saying what to change, for a configuration that cannot run."""
        for name in ("num_envs", "num_steps", "update_epochs", "num_minibatches", "total_timesteps",
                     "hidden_size", "embed_size", "head_size", "eval_episodes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"RecurrentPPOConfig.{name} must be positive, got {getattr(self, name)}.")
        for name, zero in (("eval_every", "no evaluation"), ("eval_max_steps", "the episode length")):
            if getattr(self, name) < 0:
                raise ValueError(f"RecurrentPPOConfig.{name} must be >= 0 (0: {zero}), got {getattr(self, name)}.")
        if self.num_envs % self.num_minibatches:
            raise ValueError(
                f"num_minibatches={self.num_minibatches} must divide num_envs={self.num_envs}: recurrent "
                f"minibatches are whole env sequences; choose a divisor of {self.num_envs}."
            )
        if self.num_updates < 1:
            raise ValueError(
                f"total_timesteps={self.total_timesteps} is smaller than one batch ({self.batch_size} "
                f"steps); raise total_timesteps or lower num_envs*num_steps."
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {self.activation!r}; choose one of {sorted(ACTIVATIONS)}.")
        if self.objective not in losses.POLICY_OBJECTIVES:
            raise ValueError(f"Unknown objective {self.objective!r}; choose one of "
                             f"{sorted(losses.POLICY_OBJECTIVES)} or pass policy_objective= to make_train.")
        envs.registry.check_name(self.env_name)
        if self.obs_mask:
            env, env_params = envs.make(self.env_name, **dict(self.env_kwargs))
            shape = env.observation_space(env_params).shape
            if len(shape) != 1:
                raise ValueError(f"obs_mask needs a vector observation; {self.env_name} has shape {shape}.")
            try:
                check_keep(self.obs_mask, shape[0])
            except ValueError as err:
                raise ValueError(f"RecurrentPPOConfig.obs_mask: {err}") from None


Config = RecurrentPPOConfig  # the name `lfx.rl.main` looks up in every recipe module


@struct.dataclass
class TrainState:
    """Everything a run carries from one update to the next (the checkpointed state)."""

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array  # [N, D] the next observation to act on
    reset: jax.Array  # [N] bool, `obs` is the first of an episode (reset the hidden state before it)
    hidden: jax.Array  # [N, H] the GRU state after the last step taken
    key: jax.Array
    update_idx: jax.Array  # [] int32
    last_return: jax.Array  # [] float32, mean return of the latest finished episodes
    eval_return: jax.Array  # [] float32, mean greedy return of the latest evaluation (0 before one)


class Transition(NamedTuple):
    """One env step of the N environments (leaves [N, ...]; a rollout stacks them to [T, N, ...])."""

    obs: jax.Array
    reset: jax.Array  # the hidden state was reset before `obs` (it starts an episode)
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array
    next_obs: jax.Array  # true successor (the episode's final observation at its last step)
    hidden: jax.Array  # [N, H] the GRU state after `obs` (what V(next_obs) continues from)
    episode_return: jax.Array
    episode_done: jax.Array


class RecurrentPPORecipe(NamedTuple):
    """The pieces of a recurrent PPO run (as `ppo.PPORecipe`)."""

    config: RecurrentPPOConfig
    env: Any
    env_params: Any
    network: ActorCriticRNN
    eval_env: Any
    init: Callable[..., TrainState]
    update: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    run: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    train: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    num_updates: int


class SequenceNetwork(NamedTuple):
    """`ActorCriticRNN` behind `ppo.ppo_loss`'s `network.apply(params, batch.obs) -> (pi, value)`.

    `batch.obs` is `(h_0 [M, H], obs [M, T, D], reset [M, T])`, env-major as the minibatches are;
    the GRU re-runs from h_0 over the T steps (time-major inside) and pi, value come back [M, T].
    """

    network: ActorCriticRNN

    def apply(self, params: Any, inputs: tuple[jax.Array, jax.Array, jax.Array]):
        h0, obs, reset = inputs
        _, pi, value = self.network.apply(params, h0, jnp.swapaxes(obs, 0, 1), jnp.swapaxes(reset, 0, 1))
        return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), pi), jnp.swapaxes(value, 0, 1)


def _make_raw_env(config: RecurrentPPOConfig) -> tuple[Any, Any]:
    env, env_params = envs.make(config.env_name, **dict(config.env_kwargs))
    if config.obs_mask:
        env = MaskObservation(env, config.obs_mask, env_params)
    return env, env_params


def make_env(config: RecurrentPPOConfig) -> tuple[Any, Any, bool]:
    """The training env: the (masked) env, `EpisodeStatistics`, `ClipAction` if continuous."""
    env, env_params = _make_raw_env(config)
    discrete = isinstance(env.action_space(env_params), spaces.Discrete)
    env = wrappers.EpisodeStatistics(env)
    if not discrete:
        env = wrappers.ClipAction(env)
    return env, env_params, discrete


def make_eval_env(config: RecurrentPPOConfig) -> tuple[Any, Any]:
    """The env greedy evaluation steps: the raw env (masked as in training), `ClipAction` if continuous."""
    env, env_params = _make_raw_env(config)
    if not isinstance(env.action_space(env_params), spaces.Discrete):
        env = wrappers.ClipAction(env)
    return env, env_params


def make_network(config: RecurrentPPOConfig, env: Any, env_params: Any, discrete: bool) -> ActorCriticRNN:
    space = env.action_space(env_params)
    return ActorCriticRNN(
        action_dim=space.n if discrete else space.shape[0], discrete=discrete,
        hidden_size=config.hidden_size, embed_size=config.embed_size, head_size=config.head_size,
        activation=config.activation, memory=config.memory,
    )


def step_network(network: ActorCriticRNN, params: Any, hidden: jax.Array, obs: jax.Array, reset: jax.Array):
    """One step of N envs: hidden [N, H], obs [N, D], reset [N] -> (hidden [N, H], Policy [N], value [N])."""
    hidden, pi, value = network.apply(params, hidden, obs[None], reset[None])
    return hidden, jax.tree.map(lambda x: x[0], pi), value[0]


def evaluate_recurrent(
    key: jax.Array, params: Any, network: ActorCriticRNN, env: Any, env_params: Any, *,
    num_episodes: int, max_steps: int,
) -> tuple[jax.Array, jax.Array]:
    """Greedy returns and lengths [num_episodes] of each env's first episode, the GRU state carried.

    `lfx.rl.evaluation.evaluate` with `memory` = the GRU's zero state, carried from step to step.
    """

    def act(obs, hidden, key):  # one episode: obs [D], hidden [H]
        del key
        hidden, pi, _ = step_network(network, params, hidden[None], obs[None], jnp.zeros(1, bool))
        return pi.to_env(pi.mode())[0], hidden[0]

    return evaluation.evaluate(key, act, env, env_params, num_episodes=num_episodes,
                               max_steps=max_steps,
                               memory=initialize_carry(num_episodes, network.hidden_size))


def evaluate_state(
    state: TrainState, *, config: RecurrentPPOConfig, eval_env: Any, env_params: Any, network: ActorCriticRNN
) -> tuple[TrainState, jax.Array]:
    """Greedy evaluation of the current policy: `config.eval_episodes` episodes on `eval_env`."""
    key, k_eval = jax.random.split(state.key)
    max_steps = config.eval_max_steps or int(env_params.max_steps_in_episode)
    returns, _ = evaluate_recurrent(k_eval, state.params, network, eval_env, env_params,
                                    num_episodes=config.eval_episodes, max_steps=max_steps)
    return state.replace(key=key), jnp.mean(returns)


def init_state(
    key: jax.Array, hparams: HParams, objective_params: Any = None, *,
    config: RecurrentPPOConfig, env: Any, env_params: Any, network: ActorCriticRNN,
) -> TrainState:
    """A fresh run: N reset envs, zero hidden states, new parameters, a fresh optimiser state."""
    del objective_params
    key, k_net, k_env = jax.random.split(key, 3)
    reset = jax.vmap(env.reset, in_axes=(0, None), axis_name=wrappers.ENV_AXIS)
    obs, env_state = reset(jax.random.split(k_env, config.num_envs), env_params)
    hidden = initialize_carry(config.num_envs, config.hidden_size)
    first = jnp.ones(config.num_envs, bool)
    params = network.init(k_net, hidden, obs[None], first[None])
    return TrainState(
        params=params, opt_state=ppo.make_optimizer(config, hparams).init(params), env_state=env_state,
        obs=obs, reset=first, hidden=hidden, key=key, update_idx=jnp.int32(0),
        last_return=jnp.float32(0.0), eval_return=jnp.float32(0.0),
    )


def rollout(
    state: TrainState, *, config: RecurrentPPOConfig, env: Any, env_params: Any, network: ActorCriticRNN
) -> tuple[TrainState, Transition]:
    """T steps of the N envs under the current policy, the hidden state carried and reset at episode starts.

    Returns the state advanced (envs, observations, reset flags, hidden state, key) and the trajectory
    (`Transition`, leaves [T, N, ...]); the rollout's initial hidden state is the input `state.hidden`.
    """
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None), axis_name=wrappers.ENV_AXIS)

    def env_step(carry, _):
        env_state, obs, reset, hidden, key = carry
        key, k_act, k_step = jax.random.split(key, 3)
        hidden, pi, value = step_network(network, state.params, hidden, obs, reset)
        action = pi.sample(k_act)
        next_obs, env_state, reward, terminated, truncated, info = step(
            jax.random.split(k_step, config.num_envs), env_state, pi.to_env(action), env_params)
        done = jnp.logical_or(terminated, truncated)
        transition = Transition(
            obs=obs, reset=reset, action=action, log_prob=pi.log_prob(action), value=value,
            reward=reward.astype(jnp.float32), terminated=terminated, done=done,
            next_obs=info["final_observation"], hidden=hidden,
            episode_return=info["episode_return"], episode_done=info["episode_done"],
        )
        return (env_state, next_obs, done, hidden, key), transition

    (env_state, obs, reset, hidden, key), traj = jax.lax.scan(
        env_step, (state.env_state, state.obs, state.reset, state.hidden, state.key), None, config.num_steps)
    return state.replace(env_state=env_state, obs=obs, reset=reset, hidden=hidden, key=key), traj


def compute_advantages(
    params: Any, traj: Transition, *, network: ActorCriticRNN, gamma: Any, gae_lambda: Any
) -> tuple[jax.Array, jax.Array]:
    """GAE advantages and value targets, each [T, N].

    V(s'_t) for every step in one batched GRU step: from the hidden state after s_t (no reset) on
    the true successor s'_t, so a truncated episode bootstraps under its own memory and, where the
    episode goes on, V(s'_t) is the V(s_{t+1}) the next step computes.
    """
    t, n = traj.reward.shape
    next_obs = traj.next_obs.reshape((1, t * n) + traj.next_obs.shape[2:])  # one step of T * N streams
    _, _, next_value = network.apply(params, traj.hidden.reshape(t * n, -1), next_obs, jnp.zeros((1, t * n), bool))
    return jax.vmap(functools.partial(gae_advantages, gamma=gamma, gae_lambda=gae_lambda), in_axes=1, out_axes=1)(
        traj.reward, traj.value, next_value.reshape(t, n), traj.terminated, traj.done)


def sequence_batch(h0: jax.Array, traj: Transition, adv: jax.Array, target: jax.Array) -> ppo.Batch:
    """The loss's batch, env-major: obs = (h_0 [N, H], obs [N, T, D], reset [N, T]), the rest [N, T]."""
    traj, adv, target = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), (traj, adv, target))  # [N, T, ...]
    return ppo.Batch(obs=(h0, traj.obs, traj.reset), action=traj.action, log_prob=traj.log_prob,
                     value=traj.value, advantage=adv, target=target)


def update_step(
    state: TrainState, hparams: HParams, objective_params: Any = None, *,
    config: RecurrentPPOConfig, env: Any, env_params: Any, network: ActorCriticRNN,
    policy_objective: losses.PolicyObjective,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One update: a rollout of T x N steps, GAE, E epochs of K minibatches of whole env sequences.

    Metrics (each []): `ppo.ppo_loss`'s averaged over the E * K steps, "train/episode_return",
    "train/episodes", "train/lr", "train/env_steps" (as `ppo.update_step`).
    """
    progress = state.update_idx.astype(jnp.float32) / config.num_updates
    h0 = state.hidden
    state, traj = rollout(state, config=config, env=env, env_params=env_params, network=network)
    traj = traj._replace(reward=traj.reward * hparams.reward_scale)
    adv, target = compute_advantages(state.params, traj, network=network, gamma=hparams.gamma,
                                     gae_lambda=hparams.gae_lambda)
    loss_fn = functools.partial(
        ppo.ppo_loss, network=SequenceNetwork(network), policy_objective=policy_objective, hparams=hparams,
        progress=progress, lifetime=jnp.float32(config.num_updates), clip_value=config.clip_value,
    )
    key, k_epochs = jax.random.split(state.key)
    (params, opt_state), metrics = ppo.minibatch_epochs(
        state.params, state.opt_state, k_epochs, sequence_batch(h0, traj, adv, target), objective_params,
        config=config, tx=ppo.make_optimizer(config, hparams), loss_fn=loss_fn,
    )
    metrics = jax.tree.map(jnp.mean, metrics)
    last_return, num_done = loop.finished_episodes(traj.episode_return, traj.episode_done, state.last_return)
    state = state.replace(params=params, opt_state=opt_state, key=key, update_idx=state.update_idx + 1,
                          last_return=last_return)
    metrics.update({
        "train/episode_return": last_return,
        "train/episodes": num_done,
        "train/lr": opt_state.hyperparams["learning_rate"],
        "train/env_steps": state.update_idx * config.batch_size,
    })
    return state, metrics


def make_train(
    config: RecurrentPPOConfig, policy_objective: losses.PolicyObjective | None = None
) -> RecurrentPPORecipe:
    """Builds the recurrent PPO recipe for a static config; validates it before anything is compiled."""
    config.validate()
    objective = policy_objective or losses.POLICY_OBJECTIVES[config.objective]
    env, env_params, discrete = make_env(config)
    network = make_network(config, env, env_params, discrete)
    parts = {"config": config, "env": env, "env_params": env_params, "network": network}
    eval_env, _ = make_eval_env(config)
    init = functools.partial(init_state, **parts)
    update = functools.partial(update_step, **parts, policy_objective=objective)
    evaluate = functools.partial(evaluate_state, config=config, eval_env=eval_env, env_params=env_params,
                                 network=network)
    run = functools.partial(loop.run_updates, update=update, evaluate=evaluate, eval_every=config.eval_every)
    train = functools.partial(loop.train_run, init=init, run=run, num_updates=config.num_updates)
    return RecurrentPPORecipe(config, env, env_params, network, eval_env, init, update, run, train,
                              config.num_updates)
