"""Peer-side worker for scripts/bench_dqn.py: times rejax's DQN (run with the rejax venv's python).

    /opt/peers/rejax/bin/python scripts/peers/rejax_dqn.py '<json config>'

Protocol: `bench_ppo.serve`. The configuration maps onto rejax 0.1.3's DQN fields (num_envs envs
step once per iteration, then `num_epochs` gradient steps; learning after `fill_buffer` steps with
uniform random actions before it; the target network copied every `target_update_freq` env steps,
`polyak = 0`). What cannot be made identical is listed in docs/benchmarks/dqn.md.
"""

from __future__ import annotations

import json
import sys

import jax
import jax.numpy as jnp
from rejax import DQN

from scripts.bench_ppo import serve  # the shared worker protocol (the driver puts the repo on PYTHONPATH)


def build(cfg: dict):
    per_iter = cfg["num_envs"]
    iters = cfg["total_timesteps"] // per_iter
    algo = DQN.create(
        env=cfg["env_name"],
        agent_kwargs={"activation": "relu"},
        num_envs=cfg["num_envs"],
        num_epochs=cfg["gradient_steps"],
        batch_size=cfg["batch_size"],
        buffer_size=cfg["buffer_size"],
        fill_buffer=cfg["learning_starts"],
        learning_rate=cfg["lr"],
        gamma=cfg["gamma"],
        ddqn=False,
        target_update_freq=cfg["target_update_steps"],
        polyak=0.0,
        eps_start=1.0,
        eps_end=0.05,
        exploration_fraction=0.5,
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
