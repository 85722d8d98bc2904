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

import jax
import jax.numpy as jnp
from rejax import SAC

from scripts.bench_ppo import serve  # the shared worker protocol (the driver puts the repo on PYTHONPATH)


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

    def train(seeds):
        if seeds == 1:
            return algo.train, (jax.random.PRNGKey(0),)
        return jax.vmap(algo.train), (jax.random.split(jax.random.PRNGKey(0), seeds),)

    serve("rejax", train, cfg["seed_counts"], steps, ("jax", "jaxlib", "gymnax", "flax", "optax", "rejax"))


if __name__ == "__main__":
    main()
