"""Side-by-side evaluation of policy objectives: fresh agents trained with PPO, LPO and TA-LPO.

A discovered objective is judged the way the LPO and TA-LPO papers judge it (Lu et al. 2022,
arXiv:2210.05639; Jackson et al. 2024, arXiv:2402.05828): train fresh agents with it, from scratch,
at several lifetimes N and on held-out environments, and compare their final returns with PPO's.

Objectives are grouped by a shared drift form (`lfx.meta.lpo.DriftConfig`); each group is one
compiled training function and one `vmap` over a leading [O_g] axis of its drift parameters:

  - every drift without progress features is embedded in its TA-LPO form [x, (n/N)·x] with zero
    weights on the progress features, so its drift ignores n/N (`analysis.lpo_as_ta_lpo`): LPO and
    TA-LPO of the same width and initialisation share a group;
  - PPO is the PPO-initialised TA-LPO drift of width 128 with a zero output layer, whose objective
    is PPO's clipped surrogate E[min(r·A, clip(r, 1 ± ε)·A)] up to a constant 1e-4 offset (no
    effect on gradients), so it joins the shipped 16-feature ppo_init group;
  - drifts that cannot be embedded there (lifetime features [x, p·x, log(N)·x], no PPO
    initialisation, another width) form their own group, one per DriftConfig.

The lifetime N a drift sees is the evaluated run's own number of updates, total_timesteps //
(num_envs · num_steps), exactly as in meta-training (`lfx.rl.ppo` passes it to the objective).
Results of the groups are put back in the caller's objective order.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from lfx.experiment.config import ConfigError
from lfx.experiment.harness import run_chunked
from lfx.meta import analysis, fitness, lpo
from lfx.meta.pretrained import available, load_pretrained, load_run
from lfx.rl import ppo

TA_CFG = lpo.DRIFT_CONFIGS["ta_lpo_ppo_init"]

# Keys an `env_overrides_kwargs[env]` entry may set: PPOConfig fields, `base_timesteps` (that
# environment's x1 lifetime) and `hparams` (a dict of `lfx.rl.ppo.HParams` fields).
OVERRIDABLE = ("base_timesteps", "num_envs", "num_steps", "update_epochs", "num_minibatches",
               "hidden_sizes", "activation", "anneal_lr", "normalize_obs", "normalize_reward",
               "reward_norm_gamma", "env_kwargs", "hparams")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Static settings of an objective evaluation (experiments/eval_objective.py).

    objectives: "ppo", shipped names ("ta_lpo/cartpole_cpu", ...) or meta_train.py workdirs.
    meta_env, base_timesteps, lifetime_multipliers: the meta-training environment, its x1 lifetime
      and the multiples of it evaluated (the first is the x1 cell, evaluated first).
    heldout_envs, heldout_multipliers: held-out environments and their lifetimes (x their own base).
    num_envs ... activation: the PPO agent's settings (`lfx.rl.ppo.PPOConfig` fields).
    num_seeds: fresh agents per objective and cell; seed: cell i uses key(seed + i).
    window_fraction: final return = mean episode return over this last fraction of updates.
    progress_chunks: the progress bar moves this many times per cell (results do not change).
    env_overrides_kwargs: env -> {key of OVERRIDABLE: value} where that env's PPO settings differ.
    """

    objectives: tuple[str, ...] = ("ppo", "lpo/cartpole_cpu", "ta_lpo/cartpole_cpu")
    meta_env: str = "CartPole-v1"
    base_timesteps: int = 50_000
    lifetime_multipliers: tuple[float, ...] = (1.0, 0.25, 4.0, 0.5, 2.0)
    heldout_envs: tuple[str, ...] = ("Acrobot-v1",)
    heldout_multipliers: tuple[float, ...] = (1.0,)
    num_envs: int = 4
    num_steps: int = 128
    update_epochs: int = 4
    num_minibatches: int = 4
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    num_seeds: int = 8
    seed: int = 1000
    window_fraction: float = 0.1
    progress_chunks: int = 10
    env_overrides_kwargs: tuple[tuple[str, Any], ...] = ()


def cells(config: EvalConfig) -> list[tuple[str, float]]:
    """The (env, lifetime multiplier) cells: the x1 meta-training cell, held-out envs, the rest."""
    runs = [(config.meta_env, m) for m in config.lifetime_multipliers]
    return runs[:1] + [(e, m) for e in config.heldout_envs for m in config.heldout_multipliers] + \
        runs[1:]


def _to_dict(x: Any) -> dict:
    if x is None:
        return {}
    if hasattr(x, "to_dict"):
        return x.to_dict()
    return dict(x)


def cell_settings(config: EvalConfig, env_name: str, mult: float) -> tuple[ppo.PPOConfig, ppo.HParams]:
    """PPO settings of one (env, lifetime multiplier) cell: the config's, then its env override.

    Raises:
      ConfigError: for an override key that is not in OVERRIDABLE, or settings that cannot train.
    """
    over = _to_dict(dict(config.env_overrides_kwargs).get(env_name))
    unknown = sorted(set(over) - set(OVERRIDABLE))
    if unknown:
        raise ConfigError(f"env_overrides_kwargs[{env_name!r}] has unknown keys {unknown}; allowed: "
                          f"{list(OVERRIDABLE)}.")
    base = {k: getattr(config, k) for k in ("base_timesteps", "num_envs", "num_steps",
                                            "update_epochs", "num_minibatches", "hidden_sizes",
                                            "activation")}
    s = {**base, **{k: v for k, v in over.items() if k != "hparams"}}
    fields = {f.name for f in dataclasses.fields(ppo.PPOConfig)}
    kw = {k: v for k, v in s.items() if k in fields}
    kw["hidden_sizes"] = tuple(kw["hidden_sizes"])
    kw["env_kwargs"] = tuple(sorted(_to_dict(kw.get("env_kwargs")).items()))
    hp_over = _to_dict(over.get("hparams"))
    bad = sorted(set(hp_over) - {f.name for f in dataclasses.fields(ppo.HParams)})
    if bad:
        raise ConfigError(f"env_overrides_kwargs[{env_name!r}].hparams has unknown fields {bad}.")
    try:
        cfg = ppo.PPOConfig(env_name=env_name, total_timesteps=int(s["base_timesteps"] * mult), **kw)
        cfg.validate()
        hparams = ppo.HParams(**hp_over)
        hparams.validate()
    except ValueError as err:
        raise ConfigError(f"{env_name} x{mult:g}: {err}") from err
    return cfg, hparams


def check_envs(env_names) -> None:
    """Fails before any training when an environment's optional dependency is missing."""
    for env in env_names:
        if env.startswith("brax/") and importlib.util.find_spec("brax") is None:
            raise ImportError(f"{env} needs brax, which is not installed: pip install -e '.[brax]' "
                              "(or drop it from --config.heldout_envs).")


def parse_cells(text: str, num_cells: int) -> list[int]:
    """--cells "0,2" -> [0, 2] (default: all); refuses an index outside the config's cells."""
    if not text:
        return list(range(num_cells))
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--cells must be comma-separated cell indices, got {text!r}.") from None
    bad = [i for i in out if not 0 <= i < num_cells]
    if bad or not out:
        raise ConfigError(f"--cells {text!r}: this config has cells 0..{num_cells - 1} "
                          f"({num_cells} (env, lifetime) pairs); {bad or 'none'} given.")
    return out


def validate(config: EvalConfig) -> list[tuple[str, float]]:
    """Refuses an evaluation that cannot run, before anything compiles; returns its cells."""
    if not config.objectives:
        raise ConfigError("config.objectives is empty; name at least one, e.g. ('ppo',).")
    if config.num_seeds < 1:
        raise ConfigError(f"config.num_seeds must be >= 1 (agents per objective and cell), got "
                          f"{config.num_seeds}.")
    if not 0.0 < config.window_fraction <= 1.0:
        raise ConfigError(f"config.window_fraction must be in (0, 1], got {config.window_fraction}.")
    if config.progress_chunks < 1:
        raise ConfigError(f"config.progress_chunks must be >= 1, got {config.progress_chunks}.")
    runs = cells(config)
    if not runs:
        raise ConfigError("No cells: set config.lifetime_multipliers or config.heldout_envs.")
    if any(m <= 0 for _, m in runs):
        raise ConfigError(f"Lifetime multipliers must be positive, got {[m for _, m in runs]}.")
    check_envs({e for e, _ in runs})
    for env, mult in runs:
        cell_settings(config, env, mult)
    try:
        stack_objectives(config.objectives)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    return runs


@struct.dataclass
class ObjectiveGroup:
    """Objectives that share one drift form, hence one compiled training function.

    Attributes:
      params: drift parameters with a leading [O_g] axis.
      config: the shared DriftConfig (static).
      indices: position of each member in the caller's objective list (static), length O_g.
    """

    params: dict
    config: lpo.DriftConfig = struct.field(pytree_node=False)
    indices: tuple[int, ...] = struct.field(pytree_node=False)


def _load(name: str) -> tuple[dict, lpo.DriftConfig]:
    """Parameters and DriftConfig of a shipped name or a meta_train.py workdir, shape-checked."""
    if os.path.isdir(name):
        p, cfg, _ = load_run(name)
    elif name in available():
        p, cfg, _ = load_pretrained(name)
    else:
        raise ValueError(
            f"Unknown objective {name!r}: use 'ppo', a shipped name {available()}, or the workdir "
            "of a finished experiments/meta_train.py run (a folder with params.npz).")
    want = {"w_hidden": (cfg.num_features, cfg.hidden_size), "w_out": (cfg.hidden_size,)}
    got = {k: tuple(np.shape(v)) for k, v in p.items()}
    if got != want:
        raise ValueError(
            f"{name}: parameter shapes {got} do not match its drift configuration {cfg} "
            f"(expects {want}); the run's params.npz and provenance.json disagree.")
    return p, cfg


def stack_objectives(names) -> tuple[list[ObjectiveGroup], dict]:
    """Groups objectives by drift form and stacks each group's parameters.

    Args:
      names: "ppo", names of shipped parameters ("ta_lpo/cartpole_cpu", "lpo/cartpole_cpu"), or the
        workdir of a finished experiments/meta_train.py run (a folder with params.npz).

    Returns:
      (groups in order of first appearance, {name: (original params, original DriftConfig)}).

    Raises:
      ValueError: for an unknown name, a repeated name, or parameters that do not fit their config.
    """
    names = list(names)
    if len(set(names)) != len(names):
        raise ValueError(f"Objective names must be distinct, got {names}.")
    members: dict[lpo.DriftConfig, list[tuple[int, dict]]] = {}
    originals = {}
    for i, name in enumerate(names):
        if name == "ppo":
            p, cfg = analysis.ppo_as_ta_lpo(TA_CFG), TA_CFG
            originals[name] = (p, cfg)
        else:
            p0, cfg0 = _load(name)
            originals[name] = (p0, cfg0)
            p, cfg = analysis.lpo_as_ta_lpo(p0, cfg0)
        members.setdefault(cfg, []).append((i, p))
    groups = [
        ObjectiveGroup(params=jax.tree.map(lambda *x: jnp.stack(x), *[p for _, p in m]),
                       config=cfg, indices=tuple(i for i, _ in m))
        for cfg, m in members.items()
    ]
    return groups, originals


def train_objectives(
    config: ppo.PPOConfig,
    objectives: list[ObjectiveGroup],
    key: jax.Array,
    num_seeds: int,
    *,
    hparams: ppo.HParams | None = None,
    window_fraction: float = 0.1,
    progress_chunks: int = 10,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Trains num_seeds fresh agents with each of O objectives: one vmapped computation per group.

    The run is split into `progress_chunks` jitted chunks of updates (`lfx.experiment.run_chunked`)
    so a progress bar moves while it trains. Chunking does not change the result: the training
    progress n/N that TA-LPO sees is the update counter carried in the state, and N is
    `config.num_updates`. Seeds use common random numbers: seed s has the same key under every
    objective, in every group.

    Args:
      config: the PPO recipe's static settings (environment, lifetime = total_timesteps, ...).
      objectives: groups from `stack_objectives`; O = total number of members.
      key: PRNG key; split into num_seeds seed keys.
      hparams: traced PPO hyperparameters (default `ppo.HParams()`).
      window_fraction: final return = mean episode return over this last fraction of updates.

    Returns:
      (final returns [O, S], episode-return curves [O, S, num_updates]), rows in the objective
      order given to `stack_objectives`.
    """
    hparams = ppo.HParams() if hparams is None else hparams
    keys = jax.random.split(key, num_seeds)
    num_objectives = sum(len(g.indices) for g in objectives)
    curves = np.zeros((num_objectives, num_seeds, config.num_updates), np.float32)
    for group in objectives:
        curves[list(group.indices)] = _train_group(
            config, group, keys, hparams, progress_chunks=progress_chunks, progress=progress)
    final = np.asarray(fitness.final_return(jnp.asarray(curves), window_fraction))
    return final, curves


def chunk_size(num_updates: int, progress_chunks: int) -> int:
    """The largest divisor of num_updates <= ceil(num_updates / progress_chunks): every chunk has
    the same length, so the chunk body compiles once (a shorter last chunk would compile again)."""
    target = max(1, -(-num_updates // progress_chunks))
    return max(d for d in range(1, target + 1) if num_updates % d == 0)


def _train_group(config, group, keys, hparams, *, progress_chunks, progress) -> np.ndarray:
    """Episode-return curves [O_g, S, num_updates] of one group."""
    recipe = ppo.make_ppo(config, lpo.make_lpo_objective(group.config))
    params = group.params
    init = jax.jit(jax.vmap(jax.vmap(recipe.init, in_axes=(0, None)), in_axes=(None, None),
                            axis_size=len(group.indices)))

    @functools.partial(jax.jit, static_argnums=1)
    def run(state, n):
        chunk = functools.partial(recipe.run, num_updates=n)
        over_seeds = jax.vmap(chunk, in_axes=(0, None, None))
        return jax.vmap(over_seeds, in_axes=(0, None, 0))(state, hparams, params)

    _, metrics = run_chunked(
        lambda: init(keys, hparams), run, total_updates=config.num_updates,
        chunk_size=chunk_size(config.num_updates, progress_chunks), progress=progress,
    )
    return np.asarray(metrics["train/episode_return"])
