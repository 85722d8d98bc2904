"""LPO / TA-LPO meta-training over PPO lifetimes: the static config, its tasks and fitness functions.

    static, run, es_hp, agent_hp = from_configdict(c, MetaTrainConfig, RunConfig,
                                                   hparams=es.HParams, agent_hparams=ppo.HParams)
    validate(static, es_hp, agent_hp)               # before anything compiles
    recipe = make_train(static, agent_hp)           # an `lfx.meta.es.ESRecipe`
    state, metrics = jax.jit(recipe.train)(key, es_hp)

The tasks are environments x lifetimes (`total_timesteps` x each of `lifetime_multipliers`), each a
fresh PPO agent trained by the drift being meta-learned (`lfx.rl.ppo.make_train(cfg, objective)`),
scored by `lfx.meta.fitness.make_fitness`: the final-window return normalised between
`return_floor_kwargs[env]` (default 0) and `return_table_kwargs[env]`. With lifetime_sampling="all"
every task is evaluated at every generation; with "cycle" one task per generation, in turn.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

import jax

from lfx.experiment.config import ConfigError
from lfx.meta import es, fitness, lpo
from lfx.rl import ppo

LIFETIME_SAMPLING = ("all", "cycle")


@dataclasses.dataclass(frozen=True)
class MetaTrainConfig:
    """Static settings of LPO/TA-LPO meta-training (the ES floats are `lfx.meta.es.HParams`).

    drift: a key of `lfx.meta.lpo.DRIFT_CONFIGS`; init_output_scale: the drift's initial output
      scale (0 with a *_ppo_init drift: meta-training starts at PPO).
    env_names, lifetime_multipliers, lifetime_sampling: the tasks (see the module doc).
    num_envs ... activation: the inner PPO agent (`lfx.rl.ppo.PPOConfig` fields); total_timesteps is
      the x1 lifetime.
    return_table_kwargs: env -> the return that scores 1 (a PPO return at this budget); every env
      needs one. return_floor_kwargs: env -> the return that scores 0 (default 0; a random policy's
      return for negative-return envs, e.g. -500 for Acrobot-v1).
    fitness_seeds: agents per population member per task; window_fraction: the final fraction of
      updates whose returns are averaged, in (0, 1].
    population_size, num_generations, antithetic, fitness_shaping: OpenAI-ES (`lfx.meta.es.ESConfig`).
    max_minutes: stop cleanly, checkpointed, after this wall time (0: no limit); `--resume` continues.
    pretrained_name: with --save_pretrained, also write the result into lfx/meta/pretrained/.
    """

    drift: str = "ta_lpo_ppo_init"
    init_output_scale: float = 0.0
    env_names: tuple[str, ...] = ("CartPole-v1",)
    lifetime_multipliers: tuple[float, ...] = (1.0,)
    lifetime_sampling: str = "all"
    num_envs: int = 4
    num_steps: int = 128
    total_timesteps: int = 50_000
    update_epochs: int = 4
    num_minibatches: int = 4
    network: str = "mlp"
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    return_table_kwargs: tuple[tuple[str, float], ...] = (("CartPole-v1", 500.0),)
    return_floor_kwargs: tuple[tuple[str, float], ...] = (("Acrobot-v1", -500.0),)
    fitness_seeds: int = 1
    window_fraction: float = 0.1
    population_size: int = 16
    num_generations: int = 60
    antithetic: bool = True
    fitness_shaping: str = "centered_rank"
    max_minutes: float = 0.0
    pretrained_name: str = ""

    @property
    def es_config(self) -> es.ESConfig:
        return es.ESConfig(population_size=self.population_size,
                           num_generations=self.num_generations, antithetic=self.antithetic,
                           fitness_shaping=self.fitness_shaping)

    @property
    def drift_config(self) -> lpo.DriftConfig:
        return lpo.DRIFT_CONFIGS[self.drift]

    def ppo_config(self, env_name: str, multiplier: float) -> ppo.PPOConfig:
        return ppo.PPOConfig(
            env_name=env_name, num_envs=self.num_envs, num_steps=self.num_steps,
            total_timesteps=int(self.total_timesteps * multiplier), update_epochs=self.update_epochs,
            num_minibatches=self.num_minibatches, network=self.network,
            hidden_sizes=tuple(self.hidden_sizes), activation=self.activation,
        )


def _choices(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return (f" Did you mean {', '.join(map(repr, close))}?" if close else "") + \
        f" Choose one of {', '.join(sorted(known))}."


def validate(config: MetaTrainConfig, es_hparams: es.HParams | None = None,
             agent_hparams: ppo.HParams | None = None) -> None:
    """Refuses, before anything compiles, a configuration that cannot meta-train (ConfigError)."""
    if config.drift not in lpo.DRIFT_CONFIGS:
        raise ConfigError(f"Unknown config.drift {config.drift!r}." +
                          _choices(config.drift, lpo.DRIFT_CONFIGS))
    if config.lifetime_sampling not in LIFETIME_SAMPLING:
        raise ConfigError(f"config.lifetime_sampling must be one of {LIFETIME_SAMPLING}, got "
                          f"{config.lifetime_sampling!r}.")
    if not config.env_names:
        raise ConfigError("config.env_names is empty; name at least one environment.")
    if not config.lifetime_multipliers or min(config.lifetime_multipliers) <= 0:
        raise ConfigError(f"config.lifetime_multipliers must be positive numbers, got "
                          f"{config.lifetime_multipliers}.")
    if not 0.0 < config.window_fraction <= 1.0:
        raise ConfigError(f"config.window_fraction must be in (0, 1] (the final fraction of updates "
                          f"whose returns score a lifetime), got {config.window_fraction}.")
    if config.fitness_seeds < 1:
        raise ConfigError(f"config.fitness_seeds must be >= 1, got {config.fitness_seeds}.")
    if config.max_minutes < 0:
        raise ConfigError(f"config.max_minutes must be >= 0 (0: no limit), got {config.max_minutes}.")
    table = dict(config.return_table_kwargs)
    missing = [e for e in config.env_names if e not in table]
    if missing:
        raise ConfigError(
            f"config.return_table_kwargs has no return for {missing}: fitness normalises each "
            f"environment's return by it. Add e.g. --config.return_table_kwargs.{missing[0]}=<a PPO "
            f"return at this budget>.")
    floors = dict(config.return_floor_kwargs)
    for env in config.env_names:
        if not table[env] > floors.get(env, 0.0):
            raise ConfigError(
                f"config.return_table_kwargs[{env!r}] ({table[env]}) must exceed its floor "
                f"({floors.get(env, 0.0)}); for a negative-return environment set "
                f"config.return_floor_kwargs.{env} to a random policy's return.")
    try:
        config.es_config  # noqa: B018 (its __post_init__ checks the population)
        for env in config.env_names:
            for mult in config.lifetime_multipliers:
                config.ppo_config(env, mult).validate()
        if es_hparams is not None:
            es_hparams.validate()
        if agent_hparams is not None:
            agent_hparams.validate()
    except ValueError as err:
        raise ConfigError(str(err)) from err


def build_tasks(config: MetaTrainConfig) -> list[fitness.Task]:
    """Environments x lifetimes of the config as fitness tasks (PPO lifetimes driven by the drift)."""
    objective = lpo.make_lpo_objective(config.drift_config)
    table, floors = dict(config.return_table_kwargs), dict(config.return_floor_kwargs)
    tasks = []
    for env_name in config.env_names:
        for mult in config.lifetime_multipliers:
            recipe = ppo.make_train(config.ppo_config(env_name, mult), objective)
            tasks.append(fitness.Task(f"{env_name}_x{mult:g}", recipe.train,
                                      float(table[env_name]), float(floors.get(env_name, 0.0))))
    return tasks


def make_fitness_fns(config: MetaTrainConfig, agent_hparams: ppo.HParams) -> list:
    """One fitness function over every task ("all"), or one per task ("cycle")."""
    tasks = build_tasks(config)
    kw = dict(hparams=agent_hparams, num_seeds=config.fitness_seeds,
              window_fraction=config.window_fraction)
    if config.lifetime_sampling == "cycle":
        return [fitness.make_fitness([t], **kw) for t in tasks]
    return [fitness.make_fitness(tasks, **kw)]


def init_params(config: MetaTrainConfig, seed: int) -> dict[str, jax.Array]:
    """The drift the ES mean starts from (key seed + 1, as experiments/meta_train.py always used)."""
    return lpo.init_drift(jax.random.key(seed + 1), config.drift_config,
                          output_scale=config.init_output_scale)


def make_train(config: MetaTrainConfig, agent_hparams: ppo.HParams, seed: int = 0) -> es.ESRecipe:
    """The ES meta-training recipe of `config` (validated first); the drift starts from `seed`."""
    validate(config, agent_hparams=agent_hparams)
    return es.make_train(config.es_config, make_fitness_fns(config, agent_hparams),
                         init_params(config, seed))


def run_config(config: MetaTrainConfig, run: Any, es_hparams: list[Any], agent_hparams: Any) -> dict:
    """What fixes the results (the workdir fingerprint). max_minutes only stops a run early."""
    static = {k: v for k, v in dataclasses.asdict(config).items()
              if k not in ("max_minutes", "pretrained_name")}
    return {"meta_train": static, "run": dataclasses.asdict(run),
            "hparams": [dataclasses.asdict(h) for h in es_hparams],
            "agent_hparams": dataclasses.asdict(agent_hparams)}
