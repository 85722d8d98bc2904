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

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from lfx.meta import analysis, fitness, lpo
from lfx.meta.pretrained import available, load_pretrained, load_run
from lfx.rl import ppo
from lfx.utils.loop import run_chunked

TA_CFG = lpo.DRIFT_CONFIGS["ta_lpo_ppo_init"]


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

    The run is split into `progress_chunks` jitted chunks of updates (`lfx.utils.loop.run_chunked`)
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
        chunk_size=max(1, -(-config.num_updates // progress_chunks)), batch_ndim=2,
        progress=progress, steps_per_update=config.batch_size,
    )
    return np.asarray(metrics["train/episode_return"])
