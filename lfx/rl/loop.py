"""The update loop every `lfx.rl` recipe shares: a whole run is `init`, then one scan of updates.

    run = functools.partial(run_updates, update=update, evaluate=evaluate, eval_every=k)
    train = functools.partial(train_run, init=init, run=run, num_updates=n)
    state, metrics = run(state, hparams, *args, num_updates=m)   # metrics[name]: [m]
    state, metrics = train(key, hparams, *args)                  # = run(init(key, ...), ..., n)

`update(state, hparams, *args) -> (state, metrics of [] scalars)` is one update of the recipe;
`args` are the recipe's extra run arguments (PPO's `objective_params`: a learned objective's
parameters; none for SAC, DQN, PQN). With `eval_every > 0` an evaluation follows every
`eval_every`-th update (`lfx.rl.evaluation.eval_blocks`) and the metrics gain
"eval/episode_return" and "eval/fresh". This is the `lfx.experiment` recipe protocol: `init`,
`run` (chunks of a run, for progress and checkpoints) and `train` (the whole run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from lfx.rl import evaluation


def run_updates(
    state: Any, hparams: Any, *args: Any, num_updates: int,
    update: Callable[..., tuple[Any, dict[str, jax.Array]]],
    evaluate: Callable[[Any], tuple[Any, jax.Array]] | None = None, eval_every: int = 0,
) -> tuple[Any, dict[str, jax.Array]]:
    """`num_updates` updates in one `lax.scan`; returns the state after them and metrics [num_updates]."""

    def one(s):
        return update(s, hparams, *args)

    if eval_every > 0:
        return evaluation.eval_blocks(state, num_updates, eval_every=eval_every, update=one,
                                      evaluate_state=evaluate)
    return jax.lax.scan(lambda s, _: one(s), state, None, num_updates)


def train_run(
    key: jax.Array, hparams: Any, *args: Any, init: Callable[..., Any],
    run: Callable[..., tuple[Any, dict[str, jax.Array]]], num_updates: int,
) -> tuple[Any, dict[str, jax.Array]]:
    """A whole run: validate the (concrete) hparams, `init`, then `num_updates` updates."""
    hparams.validate()
    return run(init(key, hparams, *args), hparams, *args, num_updates=num_updates)


def finished_episodes(episode_return: jax.Array, episode_done: jax.Array,
                      last_return: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The update's "train/episode_return" and "train/episodes" from `EpisodeStatistics` info.

    `episode_return` / `episode_done` [...] (any shape, e.g. [T, N]) are the wrapper's per-step
    values (the return on an episode's last step, 0 elsewhere). Returns (the mean return of the
    episodes that finished, or `last_return` when none did; the number that finished).
    """
    num_done = jnp.sum(episode_done)
    mean_return = jnp.sum(episode_return) / jnp.maximum(num_done, 1)
    return jnp.where(num_done > 0, mean_return, last_return), num_done
