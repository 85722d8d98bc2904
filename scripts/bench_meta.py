"""Inner-loop throughput of LPO meta-training: the population vmapped vs one member at a time.

    nice -n 10 python scripts/bench_meta.py --population=8 --timesteps=20000 --repeats=3

Both sides evaluate the SAME population (TA-LPO drift objectives, PPO agents on CartPole-v1 with
4 envs x 128 steps; one seed per member) after compilation:
  * vmapped: one jitted call of `lfx.meta.fitness.make_fitness` over the whole population;
  * loop: a jitted single-member lifetime called once per member.
Runs are interleaved (vmapped, loop, vmapped, loop, ...); the script prints env steps/s summed over
the population for each repeat and the median ratio. Add --env and --num_envs for MinAtar/GPU runs,
e.g. --env=SpaceInvaders-MinAtar --network=minatar_conv --num_envs=64 --timesteps=1000000
--population=64 (the issue's H100/H200 goal: one such generation in < 10 s).
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from lfx.meta import fitness, lpo  # noqa: E402
from lfx.rl import ppo  # noqa: E402

_POP = flags.DEFINE_integer("population", 8, "Population size.")
_T = flags.DEFINE_integer("timesteps", 20_000, "Env steps per member lifetime.")
_ENV = flags.DEFINE_string("env", "CartPole-v1", "Environment.")
_NET = flags.DEFINE_string("network", "mlp", "mlp | minatar_conv.")
_NUM_ENVS = flags.DEFINE_integer("num_envs", 4, "Parallel envs per agent.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Interleaved repeats.")
_OUT = flags.DEFINE_string("out", "", "Optional JSON output path.")


def main(argv):
    del argv
    cfg = ppo.PPOConfig(
        env_name=_ENV.value, num_envs=_NUM_ENVS.value, num_steps=128, total_timesteps=_T.value,
        network=_NET.value, activation="relu" if _NET.value == "minatar_conv" else "tanh",
        num_minibatches=8 if _NUM_ENVS.value >= 64 else 4,
    )
    dcfg = lpo.DRIFT_CONFIGS["ta_lpo_ppo_init"]
    train = ppo.make_train(cfg, lpo.make_lpo_objective(dcfg))
    pop = jax.vmap(lambda k: lpo.init_drift(k, dcfg, output_scale=0.1))(
        jax.random.split(jax.random.key(0), _POP.value)
    )
    hp = ppo.HParams()
    vmapped = jax.jit(fitness.make_fitness([fitness.Task("t", train)], hp))
    single = jax.jit(lambda k, p: train(k, hp, p)[1]["train/episode_return"][-1])
    steps = _POP.value * cfg.num_updates * cfg.batch_size
    key = jax.random.key(1)
    t = time.time()
    jax.block_until_ready(vmapped(key, pop))
    c_v = time.time() - t
    t = time.time()
    jax.block_until_ready(single(key, jax.tree.map(lambda x: x[0], pop)))
    c_l = time.time() - t
    rows = []
    for r in range(_REPEATS.value):
        t = time.time()
        jax.block_until_ready(vmapped(key, pop))
        v = steps / (time.time() - t)
        t = time.time()
        for i in range(_POP.value):
            jax.block_until_ready(single(key, jax.tree.map(lambda x, i=i: x[i], pop)))
        lo = steps / (time.time() - t)
        rows.append({"vmapped_steps_per_s": v, "loop_steps_per_s": lo, "ratio": v / lo})
        print(f"repeat {r}: vmapped {v:,.0f} steps/s, loop {lo:,.0f} steps/s, ratio {v / lo:.2f}", flush=True)
    out = {
        "device": str(jax.devices()[0]),
        "env": _ENV.value, "population": _POP.value, "timesteps_per_member": cfg.num_updates * cfg.batch_size,
        "compile_s_vmapped": c_v, "compile_s_single": c_l, "repeats": rows,
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
