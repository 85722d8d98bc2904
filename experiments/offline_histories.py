"""Offline RL on observation histories, with and without the bisimulation loss (Hong, Dragan & Levine
2024, arXiv:2310.20663), on partially observed Pendulum: the angular velocity removed, the agent sees
the last H (cos, sin) frames.

    python experiments/offline_histories.py --sizes 2000 10000 --seeds 3 --weights 0 1 --steps 10000

Each dataset is generated here (the noisy scripted controller of tests/offline/offline_testutil.py,
noise 0.3: a "medium" dataset, 200-step episodes) and turned into history windows
(`lfx.offline.histories.history_batches`). `lfx.offline.td3_bc_history` trains on it in one jitted
scan (`lfx.rl.loop.run_updates`), vmapped over seeds x bisimulation weights, and is evaluated every
`--eval_every` gradient steps in the wrapped env (`HistoryObservation(MaskObservation(Pendulum))`).
The recipe `lfx.offline.recipe` is not used: its observation checks and normalisation assume [N, D]
observations. Prints a markdown table (final return = the last evaluation; "last 3" = the mean of
the last three evaluations, mean +- std over seeds).
"""

from __future__ import annotations

import argparse
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from lfx import envs
from lfx.envs.partial import MaskObservation
from lfx.offline import histories
from lfx.offline import td3_bc_history as alg
from lfx.offline.scripted import noisy_controller, pendulum_rollouts
from lfx.offline.types import Batch, Spec
from lfx.rl import evaluation, loop

EPISODE_LENGTH = 200  # Pendulum-v1


@struct.dataclass
class RunState:
    agent: Any
    key: jax.Array
    eval_return: jax.Array


def history_env(history_length: int):
    env, params = envs.make("Pendulum-v1")
    env = histories.HistoryObservation(MaskObservation(env, keep=histories.PENDULUM_KEEP, params=params),
                                       history_length, params)
    return env, params


def make_train(config: alg.HistoryAgentConfig, *, steps_per_update: int, num_updates: int, eval_every: int,
               batch_size: int, eval_episodes: int):
    spec = Spec(len(histories.PENDULUM_KEEP) + 1, 1)
    env, env_params = history_env(config.history_length)

    def init(key, hparams, data: Batch) -> RunState:
        del data
        k_agent, key = jax.random.split(key)
        return RunState(alg.init(k_agent, spec, config, hparams), key, jnp.float32(0.0))

    def update(state: RunState, hparams, data: Batch):
        key, k_steps = jax.random.split(state.key)

        def one(agent, k):
            k_batch, k_update = jax.random.split(k)
            idx = jax.random.randint(k_batch, (batch_size,), 0, data.rewards.shape[0])
            return alg.update(agent, jax.tree.map(lambda x: x[idx], data), k_update, spec, config, hparams)

        agent, metrics = jax.lax.scan(one, state.agent, jax.random.split(k_steps, steps_per_update))
        return state.replace(agent=agent, key=key), jax.tree.map(jnp.mean, metrics)

    def evaluate(state: RunState):
        key, k_eval = jax.random.split(state.key)
        act = lambda obs, k: 2.0 * jnp.clip(alg.act(state.agent, obs, spec, config), -1.0, 1.0)  # noqa: E731
        returns, _ = evaluation.evaluate(k_eval, act, env, env_params, num_episodes=eval_episodes,
                                         max_steps=EPISODE_LENGTH)
        return state.replace(key=key), jnp.mean(returns)

    run = functools.partial(loop.run_updates, update=update, evaluate=evaluate, eval_every=eval_every)
    return functools.partial(loop.train_run, init=init, run=run, num_updates=num_updates)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0])
    p.add_argument("--steps", type=int, default=10_000, help="gradient steps per run")
    p.add_argument("--steps_per_update", type=int, default=500)
    p.add_argument("--eval_every", type=int, default=2, help="evaluate every this many updates")
    p.add_argument("--eval_episodes", type=int, default=10)
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--history_length", type=int, default=4)
    p.add_argument("--encoder", default="gru", choices=histories.ENCODERS)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--noise", type=float, default=0.3)
    args = p.parse_args(argv)

    config = alg.HistoryAgentConfig(hidden_sizes=tuple(args.hidden), history_length=args.history_length,
                                    encoder=args.encoder)
    config.validate()
    train = make_train(config, steps_per_update=args.steps_per_update, num_updates=args.steps // args.steps_per_update,
                       eval_every=args.eval_every, batch_size=args.batch_size, eval_episodes=args.eval_episodes)
    # One flat vmap over (weight, seed) pairs: a nested vmap(vmap(train)) hung on XLA:CPU (jax 0.10.2,
    # no CPU use, never returned) while the flat one runs.
    num_w, num_s = len(args.weights), args.seeds
    hparams = jax.tree.map(lambda *x: jnp.asarray(x, jnp.float32),
                           *[alg.HParams(bisim_weight=w) for w in args.weights for _ in range(num_s)])
    keys = jnp.tile(jax.random.split(jax.random.key(0), num_s), num_w)  # the same seeds for every weight
    # HParams.validate is skipped for traced values: check the concrete ones here.
    for w in args.weights:
        alg.HParams(bisim_weight=w).validate()
    sweep = jax.jit(jax.vmap(train, (0, 0, None)))
    rows = []
    for size in args.sizes:
        if size % EPISODE_LENGTH:
            raise ValueError(f"--sizes must be multiples of {EPISODE_LENGTH} (whole episodes), got {size}.")
        data = pendulum_rollouts(jax.random.key(size), noisy_controller(args.noise), num_envs=size // EPISODE_LENGTH,
                                 num_steps=EPISODE_LENGTH)
        behaviour = float(np.mean(np.sum(np.asarray(data.rewards).reshape(-1, EPISODE_LENGTH), axis=1)))
        batches = histories.history_batches(data, history_length=args.history_length)
        t = time.time()
        _, metrics = sweep(keys, hparams, batches)
        metrics = jax.tree.map(lambda x: np.asarray(x).reshape((num_w, num_s) + x.shape[1:]), metrics)
        fresh = metrics["eval/fresh"][0, 0] > 0
        evals = metrics["eval/episode_return"][..., fresh]  # [W, S, E]
        bisim = metrics["train/bisim_loss"][..., -1]  # [W, S]
        print(f"size {size}: {time.time() - t:.0f} s, behaviour return {behaviour:.1f}", flush=True)
        for w_i, w in enumerate(args.weights):
            final, last3 = evals[w_i, :, -1], evals[w_i, :, -3:].mean(-1)
            rows.append((size, w, behaviour, final, last3, bisim[w_i]))
            print(f"  w={w}: final {final.mean():.1f} +- {final.std():.1f} per seed {np.round(final, 1).tolist()}, "
                  f"last3 {last3.mean():.1f}, bisim {bisim[w_i].mean():.2f}", flush=True)
    print()
    print("| transitions | bisim_weight | behaviour return | final return (mean +- std) | last 3 evals | "
          "per-seed final | final L_bisim |")
    print("|---|---|---|---|---|---|---|")
    for size, w, behaviour, final, last3, bisim in rows:
        print(f"| {size} | {w:g} | {behaviour:.1f} | {final.mean():.1f} +- {final.std():.1f} | "
              f"{last3.mean():.1f} +- {last3.std():.1f} | {', '.join(f'{x:.0f}' for x in final)} | "
              f"{bisim.mean():.2f} |")


if __name__ == "__main__":
    main()
