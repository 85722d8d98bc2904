"""SAC speed: lfx against rejax (a public peer) on the identical configuration, interleaved.

    python scripts/bench_sac.py                                   # CPU: Pendulum-v1, 1 and 8 seeds
    python scripts/bench_sac.py --rounds 7 --json_out runs/bench_sac.json

The driver is scripts/bench_ppo.py's (`run_case`: long-lived workers, one compile each, an untimed
warm-up, then lfx / rejax alternating for `--rounds` rounds; the median per-round ratio of wall
time and of worker CPU time, > 1 = lfx faster). The rejax worker is scripts/peers/rejax_sac.py,
run with the peer venv's python (rejax 0.1.3 needs gymnax<1.0).

Measured configuration (both sides): gymnax Pendulum-v1, 4 envs stepping once per iteration, 4
gradient steps per iteration on batches of 128, buffer 100,000, learning after 1,000 env steps,
64-64 ReLU actor and twin critics, Adam lr 3e-4, gamma 0.99, tau 0.005, learned temperature with
target entropy -|A|. Differences that could not be removed: docs/benchmarks/sac.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import bench_ppo  # the shared driver (this script's folder is first on sys.path)

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_WORKER = os.path.join(HERE, "peers", "rejax_sac.py")
BASE = {"env_name": "Pendulum-v1", "num_envs": 4, "gradient_steps": 4, "batch_size": 128,
        "buffer_size": 100_000, "learning_starts": 1_000, "hidden_sizes": [64, 64],
        "activation": "relu", "lr": 3e-4, "gamma": 0.99, "tau": 0.005, "total_timesteps": 4_000}


def lfx_worker(cfg: dict) -> None:
    import jax  # noqa: PLC0415 (the driver itself never imports jax)

    from lfx.rl import sac  # noqa: PLC0415

    config = sac.SACConfig(
        env_name=cfg["env_name"], num_envs=cfg["num_envs"], num_steps=1,
        gradient_steps=cfg["gradient_steps"], total_timesteps=cfg["total_timesteps"],
        buffer_size=cfg["buffer_size"], learning_starts=cfg["learning_starts"],
        batch_size=cfg["batch_size"], hidden_sizes=tuple(cfg["hidden_sizes"]),
        activation=cfg["activation"],
    )
    hparams = sac.HParams(lr=cfg["lr"], gamma=cfg["gamma"], tau=cfg["tau"])
    recipe = sac.make_train(config)

    def train(seeds):
        if seeds == 1:
            return recipe.train, (jax.random.key(0), hparams)
        return jax.vmap(recipe.train, in_axes=(0, None)), (jax.random.split(jax.random.key(0), seeds), hparams)

    bench_ppo.serve("lfx", train, cfg["seed_counts"], config.num_updates * config.steps_per_update,
                    ("jax", "jaxlib", "gymnax", "flax", "optax"))


def cli_main(doc: str, base: dict, worker, script: str, peer_worker: str) -> None:
    """The command line of an off-policy bench (bench_sac.py, bench_dqn.py): flags, one case, table."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--total_timesteps", type=int, default=base["total_timesteps"], help="per seed")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per case (>= 5)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 8], help="seed counts")
    p.add_argument("--buffer_size", type=int, default=base["buffer_size"],
                   help="replay capacity on both sides (rejax's sampling cost grows with it)")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--peer_python", default="/opt/peers/rejax/bin/python")
    p.add_argument("--single_thread", action="store_true",
                   help="CPU: one XLA compute thread per worker (steadier on an oversubscribed machine)")
    p.add_argument("--json_out", default=None)
    p.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._worker is not None:
        worker(json.loads(args._worker))
        return
    if args.rounds < 1:
        raise ValueError("--rounds must be >= 1 (use >= 5 for a reported figure).")
    if not os.path.exists(args.peer_python):
        raise ValueError(f"peer python {args.peer_python} not found; create it with `python -m venv "
                         "/opt/peers/rejax && /opt/peers/rejax/bin/pip install rejax==0.1.3 'gymnax<1.0'` "
                         "or pass --peer_python.")
    total = args.total_timesteps // base["num_envs"] * base["num_envs"]
    if total <= base["learning_starts"]:
        raise ValueError(f"--total_timesteps must exceed learning_starts ({base['learning_starts']}).")
    cfg = {**base, "total_timesteps": total, "seed_counts": args.seeds, "buffer_size": args.buffer_size}
    t0 = time.time()
    print(f"case {cfg['env_name']} seeds {cfg['seed_counts']}:", flush=True)
    case = bench_ppo.run_case(cfg, args.rounds, args.device, args.peer_python, args.single_thread,
                              lfx_script=script, peer_worker=peer_worker)
    out = {"argv": sys.argv, "device": args.device, "single_thread": args.single_thread,
           "rounds": args.rounds, "cases": [case], "wall_s": time.time() - t0}
    bench_ppo.print_table(out)
    if args.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    cli_main(__doc__, BASE, lfx_worker, __file__, PEER_WORKER)
