"""Inner-loop throughput of LPO meta-training: one whole ES generation vs one member at a time.

    python scripts/bench_meta.py --population=8 --timesteps=20000 --repeats=3

Both sides run the SAME work (TA-LPO drift objectives, PPO agents on CartPole-v1 with 4 envs x 128
steps; one seed per member) after compilation:
  * generation: one jitted OpenAI-ES generation (`lfx.meta.es.make_train(...).run`, n = 1: ask,
    every member's whole lifetime vmapped over the population, tell) -- what meta-training runs each step;
  * loop: a jitted single-member lifetime called once per member, for the first `--loop_members`
    members (default: all); its rate is (members looped x steps per member) / time.
Runs are interleaved (generation, loop, generation, loop, ...); the script prints env steps/s summed
over the population for each repeat, the generation's wall time and the median ratio. MinAtar on an
accelerator (the issue's goal: one such generation in < 10 s on an H100/H200):
    python scripts/bench_meta.py --env=SpaceInvaders-MinAtar --network=minatar_conv --num_envs=64 \
        --timesteps=1000000 --population=64 --loop_members=4
Diagnosis of where a GPU generation's time goes (scripts/gpu_session.sh runs these): if the time
barely changes between --population=8 and 64, the generation is bound by per-step launch latency,
not arithmetic; --unroll=8 (several env steps per rollout-scan iteration) and XLA command buffers
(CUDA graphs over while loops, set in XLA_FLAGS) are the two levers tried; --notime_loop skips the
one-member-at-a-time timing.
"""

from __future__ import annotations

import json
import os
import time

import jax
import numpy as np
from absl import app, flags

from lfx.meta import es, fitness, lpo
from lfx.rl import ppo

_POP = flags.DEFINE_integer("population", 8, "Population size.")
_T = flags.DEFINE_integer("timesteps", 20_000, "Env steps per member lifetime.")
_ENV = flags.DEFINE_string("env", "CartPole-v1", "Environment.")
_NET = flags.DEFINE_string("network", "mlp", "mlp | minatar_conv.")
_NUM_ENVS = flags.DEFINE_integer("num_envs", 4, "Parallel envs per agent.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Interleaved repeats.")
_LOOP = flags.DEFINE_integer("loop_members", 0, "Members timed one at a time (0: the whole population).")
_OUT = flags.DEFINE_string("out", "", "Optional JSON output path.")
_UNROLL = flags.DEFINE_integer("unroll", 1, "PPOConfig.rollout_unroll: env steps per rollout-scan iteration.")
_TIME_LOOP = flags.DEFINE_bool("time_loop", True, "Also time members one at a time (compiles a second function).")


def main(argv):
    del argv
    cfg = ppo.PPOConfig(
        env_name=_ENV.value, num_envs=_NUM_ENVS.value, num_steps=128, total_timesteps=_T.value,
        network=_NET.value, activation="relu" if _NET.value == "minatar_conv" else "tanh",
        num_minibatches=8 if _NUM_ENVS.value >= 64 else 4, rollout_unroll=_UNROLL.value,
    )
    dcfg = lpo.DRIFT_CONFIGS["ta_lpo_ppo_init"]
    train = ppo.make_train(cfg, lpo.make_lpo_objective(dcfg)).train
    hp = ppo.HParams()
    recipe = es.make_train(es.ESConfig(population_size=_POP.value),
                           fitness.make_fitness([fitness.Task("t", train)], hp),
                           lpo.init_drift(jax.random.key(0), dcfg, output_scale=0.1))
    es_hp = es.HParams()
    es_state = recipe.init(jax.random.key(0), es_hp)
    run_one = jax.jit(lambda s: recipe.run(s, es_hp, num_updates=1))
    generation = lambda key, s: run_one(s.replace(key=key))  # noqa: E731
    pop, _ = recipe.strategy.ask(jax.random.key(2), es_state.es_state, es_hp)
    single = jax.jit(lambda k, p: train(k, hp, p)[1]["train/episode_return"][-1])
    per_member = cfg.num_updates * cfg.batch_size
    n_loop = _LOOP.value or _POP.value
    if not 1 <= n_loop <= _POP.value:
        raise ValueError(f"--loop_members must be in [1, population], got {n_loop}.")
    steps = _POP.value * per_member
    key = jax.random.key(1)
    t = time.time()
    jax.block_until_ready(generation(key, es_state))
    c_v = time.time() - t
    c_l = float("nan")
    if _TIME_LOOP.value:
        t = time.time()
        jax.block_until_ready(single(key, jax.tree.map(lambda x: x[0], pop)))
        c_l = time.time() - t
    print(f"compiled: generation {c_v:.1f} s, single member {c_l:.1f} s", flush=True)
    rows = []
    for r in range(_REPEATS.value):
        t = time.time()
        jax.block_until_ready(generation(jax.random.fold_in(key, r), es_state))
        gen_s = time.time() - t
        v = steps / gen_s
        lo = float("nan")
        if _TIME_LOOP.value:
            t = time.time()
            for i in range(n_loop):
                jax.block_until_ready(single(key, jax.tree.map(lambda x, i=i: x[i], pop)))
            lo = n_loop * per_member / (time.time() - t)
        rows.append({"generation_s": gen_s, "vmapped_steps_per_s": v, "loop_steps_per_s": lo, "ratio": v / lo})
        print(f"repeat {r}: generation {gen_s:.2f} s = {v:,.0f} steps/s; loop {lo:,.0f} steps/s; "
              f"ratio {v / lo:.2f}", flush=True)
    out = {
        "device": str(jax.devices()[0]),
        "env": _ENV.value, "population": _POP.value, "rollout_unroll": _UNROLL.value,
        "xla_flags": os.environ.get("XLA_FLAGS", ""), "timesteps_per_member": cfg.num_updates * cfg.batch_size,
        "compile_s_vmapped": c_v, "compile_s_single": c_l, "repeats": rows,
        "loop_members": n_loop, "median_generation_s": float(np.median([r["generation_s"] for r in rows])),
        "median_ratio": float(np.median([r["ratio"] for r in rows])),
        "median_vmapped_steps_per_s": float(np.median([r["vmapped_steps_per_s"] for r in rows])),
        "median_loop_steps_per_s": float(np.median([r["loop_steps_per_s"] for r in rows])),
    }
    print(json.dumps(out))
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    app.run(main)
