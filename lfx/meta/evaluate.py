"""Side-by-side evaluation of policy objectives: fresh agents trained with PPO, LPO and TA-LPO.

A discovered objective is judged the way the LPO and TA-LPO papers judge it (Lu et al. 2022,
arXiv:2210.05639; Jackson et al. 2024, arXiv:2402.05828): train fresh agents with it, from scratch,
at several lifetimes N and on held-out environments, and compare their final returns with PPO's.

All objectives share one compiled training function. Every objective is written as a TA-LPO drift
over the 16 features [x, (n/N)·x] of the ratio r and advantage A (`lfx.meta.lpo`):

  - TA-LPO is itself;
  - LPO is embedded with zero weights on the progress features, so its drift ignores n/N;
  - PPO is the PPO-initialised drift with a zero output layer, whose objective is PPO's clipped
    surrogate E[min(r·A, clip(r, 1 ± ε)·A)] up to a constant 1e-4 offset (no effect on gradients).

So a population of objectives is a leading [O] axis on the drift parameters and one `vmap`.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from lfx.meta import analysis, fitness, lpo
from lfx.meta.pretrained import load_pretrained, load_run
from lfx.rl import ppo
from lfx.utils.loop import run_chunked

TA_CFG = lpo.DRIFT_CONFIGS["ta_lpo_ppo_init"]


def stack_objectives(names) -> tuple[dict, dict]:
    """Stacks objectives as TA-LPO (ppo_init, width 128) drift parameters.

    Args:
      names: "ppo", names of shipped parameters ("ta_lpo/cartpole_cpu", "lpo/cartpole_cpu"), or the
        workdir of a finished experiments/meta_train.py run (a folder with params.npz).

    Returns:
      (params with a leading [O] axis, {name: (original params, original DriftConfig)}).
    """
    members, originals = [], {}
    for name in names:
        if name == "ppo":
            p = analysis.ppo_as_ta_lpo(TA_CFG)
            originals[name] = (p, TA_CFG)
        else:
            p0, cfg, _ = load_run(name) if os.path.isdir(name) else load_pretrained(name)
            if not cfg.ppo_init or cfg.hidden_size != TA_CFG.hidden_size or cfg.lifetime_features:
                raise ValueError(
                    f"{name}: only PPO-initialised (TA-)LPO drifts of width {TA_CFG.hidden_size} "
                    "without lifetime features share the evaluation's compiled function.")
            originals[name] = (p0, cfg)
            p, _ = analysis.lpo_as_ta_lpo(p0, cfg)
        members.append(p)
    return jax.tree.map(lambda *x: jnp.stack(x), *members), originals


def train_objectives(
    config: ppo.PPOConfig,
    objectives: dict,
    key: jax.Array,
    num_seeds: int,
    *,
    hparams: ppo.HParams | None = None,
    window_fraction: float = 0.1,
    progress_chunks: int = 10,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Trains num_seeds fresh agents with each of O objectives, all in one vmapped computation.

    The run is split into `progress_chunks` jitted chunks of updates (`lfx.utils.loop.run_chunked`)
    so a progress bar moves while it trains. Chunking does not change the result: the training
    progress n/N that TA-LPO sees is the update counter carried in the state. Seeds use common
    random numbers: seed s has the same key under every objective.

    Args:
      config: the PPO recipe's static settings (environment, lifetime = total_timesteps, ...).
      objectives: stacked drift parameters from `stack_objectives`, leading axis [O].
      key: PRNG key; split into num_seeds seed keys.
      hparams: traced PPO hyperparameters (default `ppo.HParams()`).
      window_fraction: final return = mean episode return over this last fraction of updates.

    Returns:
      (final returns [O, S], episode-return curves [O, S, num_updates]).
    """
    recipe = ppo.make_ppo(config, lpo.make_lpo_objective(TA_CFG))
    hparams = ppo.HParams() if hparams is None else hparams
    num_objectives = jax.tree.leaves(objectives)[0].shape[0]
    keys = jax.random.split(key, num_seeds)
    init = jax.jit(jax.vmap(jax.vmap(recipe.init, in_axes=(0, None)), in_axes=(None, None),
                            axis_size=num_objectives))

    @functools.partial(jax.jit, static_argnums=1)
    def run(state, n):
        chunk = functools.partial(recipe.run, num_updates=n)
        over_seeds = jax.vmap(chunk, in_axes=(0, None, None))
        return jax.vmap(over_seeds, in_axes=(0, None, 0))(state, hparams, objectives)

    _, metrics = run_chunked(
        lambda: init(keys, hparams), run, total_updates=config.num_updates,
        chunk_size=max(1, -(-config.num_updates // progress_chunks)), batch_ndim=2,
        progress=progress, steps_per_update=config.batch_size,
    )
    curves = np.asarray(metrics["train/episode_return"])
    final = np.asarray(fitness.final_return(jnp.asarray(curves), window_fraction))
    return final, curves
