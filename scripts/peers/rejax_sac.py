"""Peer-side worker for scripts/bench_sac.py: times rejax's SAC (run with the rejax venv's python).

    /opt/peers/rejax/bin/python scripts/peers/rejax_sac.py '<json config>'

Protocol: as scripts/peers/rejax_ppo.py (one JSON line {"ready": ...}, then "run <seeds>" ->
one JSON line with the wall and CPU time of one compiled call).

The configuration maps onto rejax 0.1.3's SAC fields (num_envs envs step once, then `num_epochs`
gradient steps on batches of `batch_size`; learning after `fill_buffer` steps). What cannot be
made identical is listed in docs/benchmarks/sac.md: rejax updates the target critics once per
iteration (`polyak` = 1 - tau), lfx after every gradient step; rejax fills the buffer with the
initial policy's actions, lfx with uniform random ones; rejax sums the two critics' losses, lfx
averages them (the same gradient up to a factor 2); evaluation is a no-op on both sides.
"""

from __future__ import annotations

import json
import sys
import time

import jax
import jax.numpy as jnp
from rejax import SAC


def build(cfg: dict):
    per_iter = cfg["num_envs"]
    iters = cfg["total_timesteps"] // per_iter
    algo = SAC.create(
        env=cfg["env_name"],
        agent_kwargs={"activation": cfg["activation"]},
        hidden_layer_sizes=tuple(cfg["hidden_sizes"]),
        num_envs=cfg["num_envs"],
        num_epochs=cfg["gradient_steps"],
        batch_size=cfg["batch_size"],
        buffer_size=cfg["buffer_size"],
        fill_buffer=cfg["learning_starts"],
        learning_rate=cfg["lr"],
        gamma=cfg["gamma"],
        polyak=1.0 - cfg["tau"],
        total_timesteps=iters * per_iter,
        eval_freq=iters * per_iter,
        skip_initial_evaluation=True,
    )
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))
    return algo, iters * per_iter


def main() -> None:
    cfg = json.loads(sys.argv[1])
    algo, steps = build(cfg)
    fns, args, compile_s = {}, {}, {}
    for seeds in cfg["seed_counts"]:
        t0 = time.perf_counter()
        if seeds == 1:
            fn, arg = jax.jit(algo.train), jax.random.PRNGKey(0)
        else:
            fn, arg = jax.jit(jax.vmap(algo.train)), jax.random.split(jax.random.PRNGKey(0), seeds)
        compiled = fn.lower(arg).compile()
        compile_s[seeds] = time.perf_counter() - t0
        jax.block_until_ready(compiled(arg))  # warm-up call, not timed
        fns[seeds], args[seeds] = compiled, arg
    from importlib.metadata import version  # noqa: PLC0415

    print(json.dumps({"ready": True, "impl": "rejax", "steps_per_seed": steps, "compile_s": compile_s,
                      "versions": {p: version(p) for p in ("jax", "jaxlib", "gymnax", "flax", "optax",
                                                           "rejax")},
                      "device": str(jax.devices()[0])}), flush=True)
    for line in sys.stdin:
        cmd, seeds = line.split()
        if cmd != "run":
            break
        seeds = int(seeds)
        t0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(fns[seeds](args[seeds]))
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(json.dumps({"impl": "rejax", "seeds": seeds, "seconds": dt, "cpu_seconds": cpu}), flush=True)


if __name__ == "__main__":
    main()
