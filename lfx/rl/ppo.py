"""The PPO recipe: a whole training run as one jittable, vmappable function.

    recipe = make_ppo(config)                       # static: shapes, loop lengths, code paths
    state, metrics = recipe.train(key, hparams)     # traced: floats -> a batch of them is a sweep
    sweep = jax.jit(jax.vmap(jax.vmap(recipe.train, (0, None)), (None, 0)))
    state, metrics = sweep(seed_keys, hparams_batch)  # metrics[k]: [H, S, num_updates]

PPO (Schulman et al. 2017, arXiv:1707.06347) with the PureJaxRL layout (Lu et al. 2022,
"Discovered Policy Optimisation", arXiv:2210.05639): vectorised environments, GAE, several epochs of
shuffled minibatches, Adam with global-norm clipping and optional linear learning-rate annealing.
The policy objective is pluggable (see `lfx.rl.losses`): `make_ppo(config, policy_objective=f)` and
`train(key, hparams, objective_params)` let a learned objective (LPO, TA-LPO, ...) drive the agent.

Metrics are aggregated per update inside the scan: every array in `metrics` is [num_updates].
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from gymnax.environments import spaces

from lfx import envs
from lfx.envs import wrappers
from lfx.rl import losses
from lfx.rl.gae import gae_advantages
from lfx.rl.networks import ACTIVATIONS, TORSOS, ActorCritic


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
    activation: str = "tanh"
    anneal_lr: bool = True
    normalize_obs: bool = False
    normalize_reward: bool = False
    reward_norm_gamma: float = 0.99
    objective: str = "ppo_clip"
    rollout_unroll: int = 1  # env steps per iteration of the rollout's scan (`lax.scan(unroll=)`)

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    def validate(self) -> None:
        """Raises ValueError, saying what to change, for a configuration that cannot run."""
        for name in ("num_envs", "num_steps", "update_epochs", "num_minibatches", "total_timesteps",
                     "rollout_unroll"):
            if getattr(self, name) <= 0:
                raise ValueError(f"PPOConfig.{name} must be positive, got {getattr(self, name)}.")
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
        }
        for name, ok in checks.items():
            value = getattr(self, name)
            if isinstance(value, jax.core.Tracer):
                continue
            if not bool(np.all(ok(np.asarray(value)))):
                raise ValueError(
                    f"HParams.{name}={value} is out of range "
                    f"(lr, clip_eps, max_grad_norm > 0; gamma, gae_lambda in [0, 1]; "
                    f"ent_coef, vf_coef >= 0)."
                )


@struct.dataclass
class TrainState:
    """Everything a run carries from one update to the next (the checkpointed state)."""

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    update_idx: jax.Array  # [] int32, updates done so far
    last_return: jax.Array  # [] float32, mean return of the latest finished episodes


class Transition(NamedTuple):
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


class PPORecipe(NamedTuple):
    """The pieces of a PPO run; `train = init` then `num_updates` x `update` in one scan."""

    config: PPOConfig
    env: Any
    env_params: Any
    network: ActorCritic
    init: Callable[..., TrainState]
    update: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    run: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    train: Callable[..., tuple[TrainState, dict[str, jax.Array]]]


def make_env(config: PPOConfig) -> tuple[Any, Any, bool]:
    """Builds the wrapped environment; returns (env, env_params, discrete)."""
    env, env_params = envs.make(config.env_name, **dict(config.env_kwargs))
    discrete = isinstance(env.action_space(env_params), spaces.Discrete)
    env = wrappers.EpisodeStatistics(env)
    if not discrete:
        env = wrappers.ClipAction(env)
    if config.normalize_obs:
        env = wrappers.NormalizeObservation(env)
    if config.normalize_reward:
        env = wrappers.NormalizeReward(env, gamma=config.reward_norm_gamma)
    return env, env_params, discrete


def make_ppo(
    config: PPOConfig, policy_objective: losses.PolicyObjective | None = None
) -> PPORecipe:
    """Builds the PPO recipe for a static config; validates it before anything is compiled.

    Args:
      config: static settings.
      policy_objective: the policy loss (signature in `lfx.rl.losses`); default
        `losses.POLICY_OBJECTIVES[config.objective]`.
    """
    config.validate()
    objective = policy_objective or losses.POLICY_OBJECTIVES[config.objective]
    env, env_params, discrete = make_env(config)
    action_space = env.action_space(env_params)
    obs_shape = env.observation_space(env_params).shape
    network = ActorCritic(
        action_dim=action_space.n if discrete else action_space.shape[0],
        discrete=discrete,
        torso=config.network,
        hidden_sizes=config.hidden_sizes,
        activation=config.activation,
        obs_ndim=len(obs_shape),
    )
    num_updates = config.num_updates
    vreset = jax.vmap(env.reset, in_axes=(0, None))
    vstep = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def optimizer(hparams: HParams) -> optax.GradientTransformation:
        return optax.chain(
            optax.clip_by_global_norm(hparams.max_grad_norm), optax.scale_by_adam(eps=1e-5)
        )

    def init(key: jax.Array, hparams: HParams) -> TrainState:
        key, k_net, k_env = jax.random.split(key, 3)
        obs, env_state = vreset(jax.random.split(k_env, config.num_envs), env_params)
        params = network.init(k_net, obs[0])
        return TrainState(
            params=params,
            opt_state=optimizer(hparams).init(params),
            env_state=env_state,
            obs=obs,
            key=key,
            update_idx=jnp.int32(0),
            last_return=jnp.float32(0.0),
        )

    def rollout(state: TrainState) -> tuple[TrainState, Transition]:
        def env_step(carry, _):
            env_state, obs, key = carry
            key, k_act, k_step = jax.random.split(key, 3)
            pi, value = network.apply(state.params, obs)
            action = pi.sample(k_act)
            log_prob = pi.log_prob(action)
            next_obs, env_state, reward, terminated, truncated, info = vstep(
                jax.random.split(k_step, config.num_envs), env_state, action, env_params
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

    def loss_fn(params, objective_params, batch, hparams, progress):
        obs, action, old_log_prob, old_value, adv, target = batch
        pi, value = network.apply(params, obs)
        log_ratio = pi.log_prob(action) - old_log_prob
        adv = jax.lax.stop_gradient((adv - adv.mean()) / (adv.std() + 1e-8))
        policy_loss, policy_metrics = objective(
            objective_params,
            log_ratio,
            adv,
            clip_eps=hparams.clip_eps,
            progress=progress,
            lifetime=jnp.float32(num_updates),
        )
        value_loss = losses.clipped_value_loss(
            value, old_value, target, clip_eps=hparams.clip_eps
        )
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

    def update(
        state: TrainState, hparams: HParams, objective_params: Any = None
    ) -> tuple[TrainState, dict[str, jax.Array]]:
        """One PPO update: a rollout of num_envs x num_steps, then epochs of minibatch steps."""
        progress = state.update_idx.astype(jnp.float32) / num_updates
        state, traj = rollout(state)
        # One batched critic pass gives V(s') for every step: the next observation where the
        # episode goes on, the final observation where it was truncated (bootstrapped) or
        # terminated (masked out by GAE).
        _, next_value = network.apply(state.params, traj.next_obs)
        adv, target = jax.vmap(
            lambda r, v, nv, te, d: gae_advantages(
                r, v, nv, te, d, gamma=hparams.gamma, gae_lambda=hparams.gae_lambda
            ),
            in_axes=1,
            out_axes=1,
        )(traj.reward, traj.value, next_value, traj.terminated, traj.done)

        flat = jax.tree.map(
            lambda x: x.reshape((config.batch_size,) + x.shape[2:]),
            (traj.obs, traj.action, traj.log_prob, traj.value, adv, target),
        )
        frac = 1.0 - progress if config.anneal_lr else 1.0
        lr = hparams.lr * frac
        tx = optimizer(hparams)
        grad_fn = jax.grad(loss_fn, has_aux=True)

        def minibatch_step(carry, batch):
            params, opt_state = carry
            grads, metrics = grad_fn(params, objective_params, batch, hparams, progress)
            updates, opt_state = tx.update(grads, opt_state, params)
            updates = jax.tree.map(lambda u: -lr * u, updates)
            return (optax.apply_updates(params, updates), opt_state), metrics

        def epoch(carry, key):
            perm = jax.random.permutation(key, config.batch_size)
            batches = jax.tree.map(
                lambda x: jnp.take(x, perm, axis=0).reshape(
                    (config.num_minibatches, config.minibatch_size) + x.shape[1:]
                ),
                flat,
            )
            return jax.lax.scan(minibatch_step, carry, batches)

        key, k_epochs = jax.random.split(state.key)
        (params, opt_state), metrics = jax.lax.scan(
            epoch,
            (state.params, state.opt_state),
            jax.random.split(k_epochs, config.update_epochs),
        )
        metrics = jax.tree.map(jnp.mean, metrics)

        num_done = jnp.sum(traj.episode_done)
        mean_return = jnp.sum(traj.episode_return) / jnp.maximum(num_done, 1)
        last_return = jnp.where(num_done > 0, mean_return, state.last_return)
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
                "train/lr": lr,
                "train/env_steps": state.update_idx * config.batch_size,
            }
        )
        return state, metrics

    def run(
        state: TrainState, hparams: HParams, objective_params: Any = None, *, num_updates: int
    ) -> tuple[TrainState, dict[str, jax.Array]]:
        """`num_updates` updates in one scan (chunks of a run, for progress and checkpoints)."""

        def body(s, _):
            return update(s, hparams, objective_params)

        return jax.lax.scan(body, state, None, num_updates)

    def train(
        key: jax.Array, hparams: HParams, objective_params: Any = None
    ) -> tuple[TrainState, dict[str, jax.Array]]:
        """A whole run: init, then `config.num_updates` updates. Metrics: [num_updates] each."""
        hparams.validate()
        state = init(key, hparams)
        return run(state, hparams, objective_params, num_updates=num_updates)

    return PPORecipe(config, env, env_params, network, init, update, run, train)


def make_train(
    config: PPOConfig, policy_objective: losses.PolicyObjective | None = None
) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
    """`make_ppo(config, policy_objective).train`: `train(key, hparams, objective_params=None)`."""
    return make_ppo(config, policy_objective).train

