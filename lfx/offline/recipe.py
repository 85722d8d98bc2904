"""The offline-RL recipe: any lfx.offline algorithm trained on a dataset, one jitted, vmappable run.

    recipe = make_train(OfflineConfig(algorithm="td3_bc", env_name="Pendulum-v1"))
    data, meta = dataset.load("datasets/pendulum/pendulum-v1-medium")
    batches = dataset.to_batches(data)                         # a Batch of all N rows
    state, metrics = recipe.train(key, recipe.HParams(), batches)
    sweep = jax.jit(jax.vmap(jax.vmap(recipe.train, (0, None, None)), (None, 0, None)))  # seeds x hparams
    over_datasets = jax.vmap(recipe.train, (None, None, 0))    # datasets of equal size, stacked

An update is `gradient_steps` gradient steps of the algorithm (`update(agent, batch, key, ...)`, see
`lfx.offline.types`), each on a batch of `batch_size` rows drawn uniformly with replacement from the
dataset; the whole run is one `lax.scan` (`lfx.rl.loop.run_updates`, shared with every RL recipe).
With `normalize_obs` the agent sees (s - mu) / (sigma + 1e-3) with mu, sigma the dataset's
observation mean and std (TD3+BC's state normalisation, Fujimoto & Gu 2021 Sec. 5; CORL
`compute_mean_std`/`normalize_states`), also at evaluation. Evaluation (`eval_every > 0`) runs the
deterministic policy `act` on the raw JAX env inside the same jitted call, continuous actions mapped
affinely from [-1, 1] to the env's bounds (as the dataset stored them).

The dataset is an argument, not part of the state: checkpoints stay small and one compiled run
serves every dataset of the same shapes. Shapes: N dataset rows, B = batch_size, D = observation
size, A = action dimension. Metrics per update ([num_updates] after `run`): the algorithm's
"train/*" means over the update's gradient steps, "train/gradient_steps", and with evaluation
"eval/episode_return", "eval/fresh".
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

from lfx import envs
from lfx.offline import dataset as ds
from lfx.offline.types import AgentConfig, Batch, Spec
from lfx.rl import evaluation, loop

# algorithm name -> module implementing the interface of lfx.offline.types (imported when used)
ALGORITHMS = {
    "bc": "lfx.offline.bc",
    "td3_bc": "lfx.offline.td3_bc",
    "rebrac": "lfx.offline.rebrac",
    "iql": "lfx.offline.iql",
    "cql": "lfx.offline.cql",
    "sac_n": "lfx.offline.sac_n",
    "edac": "lfx.offline.sac_n",  # SAC-N with the ensemble-diversity term (eta > 0)
    "a2pr": "lfx.offline.a2pr",
}


def algorithm_module(name: str) -> ModuleType:
    """The module of algorithm `name` (see `ALGORITHMS`)."""
    if name not in ALGORITHMS:
        raise ValueError(f"Unknown offline algorithm {name!r}; choose one of {sorted(ALGORITHMS)}.")
    return importlib.import_module(ALGORITHMS[name])


def algorithm_hparams(name: str) -> type:
    """The traced HParams class of algorithm `name` (EDAC: SAC-N's with its `eta` default > 0)."""
    module = algorithm_module(name)
    return getattr(module, "EDACHParams", module.HParams) if name == "edac" else module.HParams


@dataclasses.dataclass(frozen=True)
class OfflineConfig:
    """Static settings of an offline run.

    dataset: path of the dataset (`<dir>/<env>-<level>`, written by experiments/offline_datasets.py);
      the scripts load it, the recipe takes its arrays as an argument.
    total_gradient_steps / gradient_steps: the run's gradient steps, and those per update (one
      metrics row, one possible evaluation point).
    eval_every: evaluate after every this many updates (0: never); eval_episodes episodes of at most
      eval_max_steps steps (0: the env's episode length).
    """

    algorithm: str = "td3_bc"
    env_name: str = "Pendulum-v1"
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    dataset: str = ""
    total_gradient_steps: int = 20_000
    gradient_steps: int = 100
    batch_size: int = 256
    normalize_obs: bool = True
    agent: AgentConfig = AgentConfig()
    eval_every: int = 10
    eval_episodes: int = 10
    eval_max_steps: int = 0

    @property
    def num_updates(self) -> int:
        return self.total_gradient_steps // self.gradient_steps

    @property
    def steps_per_update(self) -> int:
        """Gradient steps per update (the x axis of the learning curves)."""
        return self.gradient_steps

    def validate(self) -> None:
        algorithm_module(self.algorithm)
        for name in ("total_gradient_steps", "gradient_steps", "batch_size", "eval_episodes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"OfflineConfig.{name} must be positive, got {getattr(self, name)}.")
        for name in ("eval_every", "eval_max_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"OfflineConfig.{name} must be >= 0, got {getattr(self, name)}.")
        if self.eval_every > self.num_updates:
            raise ValueError(f"eval_every={self.eval_every} updates is more than the run's {self.num_updates} "
                             f"(total_gradient_steps / gradient_steps): nothing would be evaluated; lower "
                             f"eval_every or raise total_gradient_steps.")
        if self.total_gradient_steps % self.gradient_steps:
            raise ValueError(f"gradient_steps={self.gradient_steps} must divide total_gradient_steps="
                             f"{self.total_gradient_steps}.")
        self.agent.validate()
        envs.registry.check_name(self.env_name)


@struct.dataclass
class OfflineState:
    """What an offline run carries between updates (the checkpointed state; the dataset is not in it)."""

    agent: Any
    obs_mean: jax.Array  # [D]
    obs_std: jax.Array  # [D]
    key: jax.Array
    update_idx: jax.Array  # [] int32
    eval_return: jax.Array  # [] float32


class OfflineRecipe(NamedTuple):
    config: OfflineConfig
    algorithm: ModuleType
    HParams: type
    spec: Spec
    env: Any
    env_params: Any
    init: Callable[..., OfflineState]  # (key, hparams, dataset) -> state
    update: Callable[..., tuple[OfflineState, dict[str, jax.Array]]]
    run: Callable[..., tuple[OfflineState, dict[str, jax.Array]]]  # (state, hparams, dataset, *, num_updates)
    train: Callable[..., tuple[OfflineState, dict[str, jax.Array]]]  # (key, hparams, dataset)
    evaluate: Callable[[OfflineState], tuple[OfflineState, jax.Array]]
    num_updates: int


def env_spec(env: Any, env_params: Any) -> tuple[Spec, np.ndarray | None, np.ndarray | None]:
    """(Spec, action low, action high) of a gymnax-style env (bounds None for discrete actions)."""
    obs_dim = int(np.prod(env.observation_space(env_params).shape))
    space = env.action_space(env_params)
    if isinstance(space, spaces.Discrete):
        return Spec(obs_dim, 1, discrete=True, num_actions=int(space.n)), None, None
    dim = int(np.prod(space.shape))
    low = np.broadcast_to(np.asarray(space.low, np.float32), (dim,))
    high = np.broadcast_to(np.asarray(space.high, np.float32), (dim,))
    return Spec(obs_dim, dim), low, high


def check_dataset(spec: Spec, config: OfflineConfig, data: Batch | ds.Dataset,
                  metadata: dict[str, Any] | None = None) -> None:
    """Refuses (ValueError naming the mismatch) a dataset that does not fit the config's env."""
    where = f" ({config.dataset})" if config.dataset else ""
    if metadata is not None and metadata.get("env") not in (None, config.env_name):
        raise ValueError(f"The dataset{where} was generated on {metadata['env']!r} but config.env_name is "
                         f"{config.env_name!r}; set --config.env_name={metadata['env']} or pick another dataset.")
    obs = data.observations
    if obs.shape[-1] != spec.obs_dim:
        raise ValueError(f"The dataset's observations have size {obs.shape[-1]}{where}, {config.env_name}'s "
                         f"have {spec.obs_dim}.")
    actions = data.actions
    discrete = actions.ndim == obs.ndim - 1
    if discrete != spec.discrete:
        raise ValueError(f"The dataset{where} has {'discrete' if discrete else 'continuous'} actions, "
                         f"{config.env_name} {'discrete' if spec.discrete else 'continuous'} ones.")
    if not spec.discrete and actions.shape[-1] != spec.action_dim:
        raise ValueError(f"The dataset's actions have dimension {actions.shape[-1]}{where}, "
                         f"{config.env_name}'s have {spec.action_dim}.")


def init_state(key: jax.Array, hparams: Any, data: Batch, *, config: OfflineConfig, spec: Spec,
               algorithm: ModuleType) -> OfflineState:
    """A fresh agent and the dataset's observation statistics (mean 0, std 1 without normalize_obs)."""
    check_dataset(spec, config, data)
    key, k_agent = jax.random.split(key)
    if config.normalize_obs:
        mean, std = jnp.mean(data.observations, axis=0), jnp.std(data.observations, axis=0) + 1e-3
    else:
        mean, std = jnp.zeros(spec.obs_dim), jnp.ones(spec.obs_dim)
    agent = algorithm.init(k_agent, spec, config.agent, hparams)
    return OfflineState(agent=agent, obs_mean=mean, obs_std=std, key=key, update_idx=jnp.int32(0),
                        eval_return=jnp.float32(0.0))


def sample_batch(key: jax.Array, data: Batch, state: OfflineState, batch_size: int) -> Batch:
    """`batch_size` rows drawn uniformly with replacement, observations normalised."""
    idx = jax.random.randint(key, (batch_size,), 0, data.rewards.shape[0])
    batch = jax.tree.map(lambda x: x[idx], data)
    norm = lambda o: (o - state.obs_mean) / state.obs_std  # noqa: E731
    return batch.replace(observations=norm(batch.observations), next_observations=norm(batch.next_observations))


def update_step(state: OfflineState, hparams: Any, data: Batch, *, config: OfflineConfig, spec: Spec,
                algorithm: ModuleType) -> tuple[OfflineState, dict[str, jax.Array]]:
    """`gradient_steps` gradient steps; metrics are their means."""
    key, k_steps = jax.random.split(state.key)

    def one(agent, k):
        k_batch, k_update = jax.random.split(k)
        batch = sample_batch(k_batch, data, state, config.batch_size)
        return algorithm.update(agent, batch, k_update, spec, config.agent, hparams)

    agent, metrics = jax.lax.scan(one, state.agent, jax.random.split(k_steps, config.gradient_steps))
    metrics = jax.tree.map(jnp.mean, metrics)
    state = state.replace(agent=agent, key=key, update_idx=state.update_idx + 1)
    metrics["train/gradient_steps"] = state.update_idx * config.gradient_steps
    return state, metrics


def policy_act(state: OfflineState, *, config: OfflineConfig, spec: Spec, algorithm: ModuleType,
               low: np.ndarray | None, high: np.ndarray | None) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """`act(obs, key) -> env action` of the run's deterministic policy (normalising first)."""

    def act(obs, key):
        del key
        a = algorithm.act(state.agent, (obs - state.obs_mean) / state.obs_std, spec, config.agent)
        if spec.discrete:
            return a
        return jnp.asarray(low) + (jnp.clip(a, -1.0, 1.0) + 1.0) * 0.5 * jnp.asarray(high - low)

    return act


def evaluate_state(state: OfflineState, *, config: OfflineConfig, spec: Spec, algorithm: ModuleType,
                   env: Any, env_params: Any, low, high) -> tuple[OfflineState, jax.Array]:
    """Mean return of `eval_episodes` episodes of the deterministic policy on the raw env."""
    key, k_eval = jax.random.split(state.key)
    max_steps = config.eval_max_steps or int(env_params.max_steps_in_episode)
    act = policy_act(state, config=config, spec=spec, algorithm=algorithm, low=low, high=high)
    returns, _ = evaluation.evaluate(k_eval, act, env, env_params, num_episodes=config.eval_episodes,
                                     max_steps=max_steps)
    return state.replace(key=key), jnp.mean(returns)


def make_train(config: OfflineConfig) -> OfflineRecipe:
    """Builds the recipe for a static config; validates it before anything is compiled."""
    config.validate()
    algorithm = algorithm_module(config.algorithm)
    env, env_params = envs.make(config.env_name, **dict(config.env_kwargs))
    spec, low, high = env_spec(env, env_params)
    parts = {"config": config, "spec": spec, "algorithm": algorithm}
    init = functools.partial(init_state, **parts)
    update = functools.partial(update_step, **parts)
    evaluate = functools.partial(evaluate_state, **parts, env=env, env_params=env_params, low=low, high=high)
    run = functools.partial(loop.run_updates, update=update, evaluate=evaluate, eval_every=config.eval_every)
    train = functools.partial(loop.train_run, init=init, run=run, num_updates=config.num_updates)
    return OfflineRecipe(config, algorithm, algorithm_hparams(config.algorithm), spec, env, env_params,
                         init, update, run, train, evaluate, config.num_updates)


def family(name: str) -> SimpleNamespace:
    """Algorithm `name` as an `lfx.rl.main` recipe module: `Config`, `HParams`, `make_train`."""
    hparams = algorithm_hparams(name)

    def make(config: OfflineConfig) -> OfflineRecipe:
        if config.algorithm != name:
            raise ValueError(f"config.algorithm={config.algorithm!r} but the config's hparams are {name!r}'s.")
        return make_train(config)

    return SimpleNamespace(Config=OfflineConfig, HParams=hparams, make_train=make)
