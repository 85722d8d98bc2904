"""DQN speed: lfx against rejax (a public peer) on the identical configuration, interleaved.

    python scripts/bench_dqn.py                                   # CPU: CartPole-v1, 1 and 8 seeds
    python scripts/bench_dqn.py --rounds 7 --json_out runs/bench_dqn.json

Flags, driver and worker protocol are bench_sac.py's / bench_ppo.py's; the rejax worker is
scripts/peers/rejax_dqn.py (run with the peer venv's python: rejax 0.1.3 needs gymnax<1.0).

Measured configuration (both sides): CartPole-v1, 10 envs stepping once per iteration, 1 gradient
step per iteration on batches of 128, buffer 10,000, learning after 1,000 env steps (uniform random
actions before), epsilon 1 -> 0.05 over half the run, a hard target copy every 500 env steps,
64-64 ReLU Q-network, Adam lr 2.5e-4, gamma 0.99, MSE TD loss, no double DQN, 50,000 env steps per
seed. Differences that could not be removed: docs/benchmarks/dqn.md.
"""

from __future__ import annotations

import os

import bench_ppo  # the shared worker protocol (this script's folder is first on sys.path)
import bench_sac  # the shared off-policy command line

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_WORKER = os.path.join(HERE, "peers", "rejax_dqn.py")
BASE = {"env_name": "CartPole-v1", "num_envs": 10, "gradient_steps": 1, "batch_size": 128,
        "buffer_size": 10_000, "learning_starts": 1_000, "target_update_steps": 500,
        "hidden_sizes": [64, 64], "lr": 2.5e-4, "gamma": 0.99, "total_timesteps": 50_000}


def lfx_worker(cfg: dict) -> None:
    import jax  # noqa: PLC0415 (the driver itself never imports jax)

    from lfx.rl import dqn  # noqa: PLC0415

    config = dqn.DQNConfig(
        env_name=cfg["env_name"], num_envs=cfg["num_envs"], num_steps=1,
        gradient_steps=cfg["gradient_steps"], total_timesteps=cfg["total_timesteps"],
        buffer_size=cfg["buffer_size"], learning_starts=cfg["learning_starts"],
        batch_size=cfg["batch_size"], hidden_sizes=tuple(cfg["hidden_sizes"]),
        target_update_every=cfg["target_update_steps"] // cfg["num_envs"], double_dqn=False, loss="mse",
    )
    hparams = dqn.HParams(lr=cfg["lr"], gamma=cfg["gamma"], tau=1.0, eps_start=1.0, eps_end=0.05,
                          eps_decay_fraction=0.5)
    recipe = dqn.make_train(config)

    def train(seeds):
        if seeds == 1:
            return recipe.train, (jax.random.key(0), hparams)
        return jax.vmap(recipe.train, in_axes=(0, None)), (jax.random.split(jax.random.key(0), seeds), hparams)

    bench_ppo.serve("lfx", train, cfg["seed_counts"], config.num_updates * config.steps_per_update,
                    ("jax", "jaxlib", "gymnax", "flax", "optax"))


if __name__ == "__main__":
    bench_sac.cli_main(__doc__, BASE, lfx_worker, __file__, PEER_WORKER)
