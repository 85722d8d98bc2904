"""LPG / TA-LPG meta-training on LPG's grid worlds by ES or meta-gradients: config and recipes.

    static, run, hp = from_configdict(c, MetaLPGConfig, RunConfig, hparams=hparams_class(c.estimator))
    validate(static, hp)                      # before anything compiles
    recipe = make_train(static, seed)         # lfx.meta.es.ESRecipe or lfx.meta.metagrad.MetaGradRecipe
    state, metrics = jax.jit(recipe.train)(key, hp)

ES (`estimator="es"`): OpenAI-ES with LPG's antithetic task sampling (`lfx.meta.lpg.make_lpg_fitness`;
each +/- pair on one random level and, for TA-LPG, one lifetime drawn log-uniformly in
`lifetime_range`), one update = one generation. Meta-gradients (`"metagrad"`): truncated
backpropagation through `window` agent updates (`lfx.meta.metagrad.make_train`) along lifetimes of
`max_updates` updates, a fresh agent and level when a lifetime cannot fit another window; one update
= one meta-gradient step.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from lfx.experiment.config import ConfigError
from lfx.meta import es, lpg, metagrad

ESTIMATORS = ("es", "metagrad")


@dataclasses.dataclass(frozen=True)
class MetaLPGConfig:
    """Static settings of LPG meta-training (floats a sweep varies are the estimator's HParams).

    estimator: "es" or "metagrad". temporally_aware: TA-LPG (n/N and log N inputs).
    env_name ... agent_lr: the LPG network and inner agent (`lfx.meta.lpg.LPGConfig` fields).
    population_size, num_generations, lifetime_range: ES (lifetime_range () = every lifetime is
      max_updates). metagrad_steps, window: meta-gradients.
    max_minutes: stop cleanly, checkpointed, after this wall time (0: no limit); --resume continues.
    """

    estimator: str = "es"
    temporally_aware: bool = True
    env_name: str = "LPG-Random-Small"
    random_levels: bool = True
    hidden_size: int = 32
    num_envs: int = 8
    num_steps: int = 20
    max_updates: int = 40
    agent_hidden: int = 32
    agent_lr: float = 0.02
    population_size: int = 16
    num_generations: int = 25
    lifetime_range: tuple[float, ...] = (10.0, 40.0)
    metagrad_steps: int = 150
    window: int = 5
    max_minutes: float = 10.0

    @property
    def variant(self) -> str:
        return ("ta_" if self.temporally_aware else "") + "lpg_" + self.estimator

    @property
    def num_updates(self) -> int:
        return self.num_generations if self.estimator == "es" else self.metagrad_steps

    def lpg_config(self) -> lpg.LPGConfig:
        return lpg.LPGConfig(
            hidden_size=self.hidden_size, temporally_aware=self.temporally_aware,
            env_name=self.env_name, random_levels=self.random_levels, num_envs=self.num_envs,
            num_steps=self.num_steps, max_updates=self.max_updates, agent_hidden=self.agent_hidden,
            agent_lr=self.agent_lr,
        )


def hparams_class(estimator: str) -> type:
    """The traced HParams of an estimator (ES: lr, σ and decays; metagrad: meta_lr)."""
    if estimator not in ESTIMATORS:
        raise ConfigError(f"config.estimator must be one of {ESTIMATORS}, got {estimator!r}.")
    return es.HParams if estimator == "es" else metagrad.HParams


def validate(config: MetaLPGConfig, hparams=None) -> None:
    """Refuses, before anything compiles, a configuration that cannot meta-train (ConfigError)."""
    hparams_class(config.estimator)
    if config.num_updates < 1:
        name = "num_generations" if config.estimator == "es" else "metagrad_steps"
        raise ConfigError(f"config.{name} must be >= 1, got {config.num_updates}.")
    if config.max_minutes < 0:
        raise ConfigError(f"config.max_minutes must be >= 0 (0: no limit), got {config.max_minutes}.")
    lr = config.lifetime_range
    if lr and (len(lr) != 2 or not 1 <= lr[0] <= lr[1] <= config.max_updates):
        raise ConfigError(f"config.lifetime_range must be () or (lo, hi) with 1 <= lo <= hi <= "
                          f"max_updates={config.max_updates}, got {lr}.")
    if config.estimator == "metagrad" and not 1 <= config.window <= config.max_updates:
        raise ConfigError(f"config.window must be in [1, max_updates={config.max_updates}], got "
                          f"{config.window}.")
    try:
        config.lpg_config()
        if config.estimator == "es":
            es.ESConfig(population_size=config.population_size,
                        num_generations=config.num_generations)
        if hparams is not None:
            hparams.validate()
    except ValueError as err:
        raise ConfigError(str(err)) from err


def init_params(config: MetaLPGConfig, seed: int):
    """The LPG network meta-training starts from (key seed + 1, as meta_lpg.py always used)."""
    return lpg.init_lpg(jax.random.key(seed + 1), config.lpg_config())


def make_train(config: MetaLPGConfig, seed: int = 0):
    """The recipe of the configured estimator (validated first)."""
    validate(config)
    cfg = config.lpg_config()
    init = init_params(config, seed)
    if config.estimator == "es":
        fit = lpg.make_lpg_fitness(cfg, lifetime_range=tuple(config.lifetime_range) or None)
        es_cfg = es.ESConfig(population_size=config.population_size,
                             num_generations=config.num_generations)
        return es.make_train(es_cfg, fit, init)
    a_init, inner_update, meta_loss = lpg.make_lpg_metagrad(cfg)
    return metagrad.make_train(
        lambda k: a_init(k, jax.random.fold_in(k, 1)), inner_update, meta_loss, init,
        window=config.window, num_steps=config.metagrad_steps,
        needs_reset=lambda s: s.update_idx + config.window > cfg.max_updates)


def evaluate(cfg: lpg.LPGConfig, params, key: jax.Array, num: int = 16) -> tuple[float, float]:
    """Final reward rate (mean, s.e.) of fresh agents on held-out random levels (N = max_updates)."""
    train = lpg.make_lpg_train(cfg)
    k1, k2 = jax.random.split(key)
    _, m = jax.jit(jax.vmap(train, in_axes=(0, None, None, 0)))(
        jax.random.split(k1, num), params, float(cfg.max_updates), jax.random.split(k2, num))
    rate = lpg.masked_final_mean(m["train/reward_rate"], m["train/active"], 0.2)
    return float(rate.mean()), float(rate.std() / np.sqrt(num))
