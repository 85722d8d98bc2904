"""Peer-side worker for scripts/bench_ppo.py: times rejax's PPO (run with the rejax venv's python).

    /opt/peers/rejax/bin/python scripts/peers/rejax_ppo.py '<json config>'

Protocol (same as the lfx worker in bench_ppo.py): compiles one training function per seed count
in `config["seed_counts"]`, prints one JSON line {"ready": ...}, then answers every stdin line
"run <seeds>" with one JSON line holding the wall time of one compiled call (block_until_ready).

The configuration is mapped onto rejax 0.1.3's PPO fields; what cannot be made identical is listed
in docs/benchmarks/ppo.md:
  * learning-rate annealing: rejax's `learning_rate` goes straight into `optax.adam`, so a schedule
    callable gives the same per-update linear decay as lfx (constant within an update);
  * evaluation: rejax evaluates 128 episodes every `eval_freq` steps inside `train`; the benchmark
    times training only, so `eval_freq` = the whole run and the evaluation callback is a no-op;
  * `max_grad_norm` is element-wise clipping (`optax.clip`) in rejax, a global-norm clip in lfx.
"""

from __future__ import annotations

import json
import sys
import time

import jax
import jax.numpy as jnp
from rejax import PPO


def build(cfg: dict):
    batch = cfg["num_envs"] * cfg["num_steps"]
    num_updates = cfg["total_timesteps"] // batch
    steps_per_update = cfg["update_epochs"] * cfg["num_minibatches"]
    lr = cfg["lr"]

    def lr_schedule(count):
        # optax counts minibatch steps; lfx uses lr * (1 - update / num_updates) for a whole update.
        update = count // steps_per_update
        return lr * (1.0 - update / num_updates)

    algo = PPO.create(
        env=cfg["env_name"],
        agent_kwargs={
            "activation": cfg["activation"],
            "hidden_layer_sizes": tuple(cfg["hidden_sizes"]),
        },
        num_envs=cfg["num_envs"],
        num_steps=cfg["num_steps"],
        num_epochs=cfg["update_epochs"],
        num_minibatches=cfg["num_minibatches"],
        learning_rate=lr_schedule if cfg["anneal_lr"] else lr,
        max_grad_norm=cfg["max_grad_norm"],
        total_timesteps=num_updates * batch,
        eval_freq=num_updates * batch,
        skip_initial_evaluation=True,
        gamma=cfg["gamma"],
        gae_lambda=cfg["gae_lambda"],
        clip_eps=cfg["clip_eps"],
        ent_coef=cfg["ent_coef"],
        vf_coef=cfg["vf_coef"],
        normalize_observations=False,
        normalize_rewards=False,
    )
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))
    return algo, num_updates * batch


def main() -> None:
    cfg = json.loads(sys.argv[1])
    algo, steps = build(cfg)
    fns, args, compile_s = {}, {}, {}
    for seeds in cfg["seed_counts"]:
        t0 = time.perf_counter()
        if seeds == 1:
            fn = jax.jit(algo.train)
            arg = jax.random.PRNGKey(0)
        else:
            fn = jax.jit(jax.vmap(algo.train))
            arg = jax.random.split(jax.random.PRNGKey(0), seeds)
        compiled = fn.lower(arg).compile()
        compile_s[seeds] = time.perf_counter() - t0
        jax.block_until_ready(compiled(arg))  # warm-up call, not timed
        fns[seeds], args[seeds] = compiled, arg
    print(
        json.dumps(
            {
                "ready": True,
                "impl": "rejax",
                "steps_per_seed": steps,
                "compile_s": compile_s,
                "versions": _versions(),
                "device": str(jax.devices()[0]),
            }
        ),
        flush=True,
    )
    for line in sys.stdin:
        cmd, seeds = line.split()
        if cmd != "run":
            break
        seeds = int(seeds)
        t0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(fns[seeds](args[seeds]))
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(json.dumps({"impl": "rejax", "seeds": seeds, "seconds": dt, "cpu_seconds": cpu}), flush=True)


def _versions() -> dict:
    from importlib.metadata import version  # noqa: PLC0415

    return {p: version(p) for p in ("jax", "jaxlib", "gymnax", "flax", "optax", "rejax")}


if __name__ == "__main__":
    main()
