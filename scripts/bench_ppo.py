"""PPO speed: lfx against rejax (a public peer) on the identical configuration, interleaved.

    python scripts/bench_ppo.py                                   # CPU: CartPole, 1 and 8 seeds
    python scripts/bench_ppo.py --rounds 7 --json_out runs/bench_ppo.json
    python scripts/bench_ppo.py --preset gpu --device gpu         # the peer's published GPU cases

Each side runs in its own long-lived subprocess: lfx with this python, rejax with the peer venv's
python (`--peer_python`, default /opt/peers/rejax/bin/python; rejax 0.1.3 needs gymnax<1.0, so it
cannot share lfx's environment). Every worker compiles each training function once
(`jit(...).lower(...).compile()`, timed separately), makes one untimed warm-up call, and then
answers "run <seeds>" with the wall time of one call (`block_until_ready`). The driver alternates
lfx, peer, lfx, peer, ... for `--rounds` rounds per case, so both sides see the same machine
load, and reports every run, each side's median steps/s and the median of the per-round ratios
lfx/peer (env steps per second; a ratio > 1 means lfx is faster). Each run also records the CPU
time of its worker process (`time.process_time`, all threads): on a shared, oversubscribed machine
the wall time mostly measures the other tenants, and the CPU-time ratio is the steadier figure.

Measured configuration (both sides): CartPole-v1, 16 envs x 128 steps, 4 epochs x 4 minibatches,
64-64 tanh MLP actor and critic, lr 2.5e-4 linearly annealed per update, gamma 0.99, lambda 0.95,
clip 0.2, entropy 0.01, value 0.5, max grad norm 0.5, no observation/reward normalisation.
Differences that could not be removed are listed in docs/benchmarks/ppo.md.

`--device` picks the platform of both workers (cpu: JAX_PLATFORMS=cpu; gpu: JAX_PLATFORMS=cuda,
which needs a CUDA jaxlib of the SAME version in both environments, e.g.
`pip install "jax[cuda12]==<version>"` in the system python and in the peer venv).
`--preset gpu` runs the cases behind the peer's published H200 figures: CartPole 5e5 steps x 2048
seeds, and Breakout-MinAtar with 64 envs x 128 steps, 4 epochs x 8 minibatches, 64-64 tanh MLP on
the flattened grid (rejax's network), 1e6 steps x 64 seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_WORKER = os.path.join(HERE, "peers", "rejax_ppo.py")

BASE = {
    "env_name": "CartPole-v1",
    "num_envs": 16,
    "num_steps": 128,
    "update_epochs": 4,
    "num_minibatches": 4,
    "hidden_sizes": [64, 64],
    "activation": "tanh",
    "anneal_lr": True,
    "lr": 2.5e-4,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_eps": 0.2,
    "ent_coef": 0.01,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
}

GPU_CASES = [
    {**BASE, "total_timesteps": 500_000, "seed_counts": [2048]},
    {
        **BASE,
        "env_name": "Breakout-MinAtar",
        "num_envs": 64,
        "num_minibatches": 8,
        "total_timesteps": 1_000_000,
        "seed_counts": [64],
    },
]


# ---------------------------------------------------------------------------------------------
# lfx worker (runs in a subprocess of this script, with the system python).


def lfx_worker(cfg: dict) -> None:
    import jax  # noqa: PLC0415 (the driver itself never imports jax)

    from lfx.rl.ppo import HParams, PPOConfig, make_ppo  # noqa: PLC0415

    config = PPOConfig(
        env_name=cfg["env_name"],
        num_envs=cfg["num_envs"],
        num_steps=cfg["num_steps"],
        total_timesteps=cfg["total_timesteps"],
        update_epochs=cfg["update_epochs"],
        num_minibatches=cfg["num_minibatches"],
        network="mlp",
        hidden_sizes=tuple(cfg["hidden_sizes"]),
        activation=cfg["activation"],
        anneal_lr=cfg["anneal_lr"],
    )
    hparams = HParams(
        **{k: cfg[k] for k in ("lr", "gamma", "gae_lambda", "clip_eps", "ent_coef", "vf_coef")},
        max_grad_norm=cfg["max_grad_norm"],
    )
    recipe = make_ppo(config)
    fns, args, compile_s = {}, {}, {}
    for seeds in cfg["seed_counts"]:
        t0 = time.perf_counter()
        if seeds == 1:
            fn = jax.jit(recipe.train)
            arg = (jax.random.key(0), hparams)
        else:
            fn = jax.jit(jax.vmap(recipe.train, in_axes=(0, None)))
            arg = (jax.random.split(jax.random.key(0), seeds), hparams)
        compiled = fn.lower(*arg).compile()
        compile_s[seeds] = time.perf_counter() - t0
        jax.block_until_ready(compiled(*arg))  # warm-up call, not timed
        fns[seeds], args[seeds] = compiled, arg

    from importlib.metadata import version  # noqa: PLC0415

    print(
        json.dumps(
            {
                "ready": True,
                "impl": "lfx",
                "steps_per_seed": config.num_updates * config.batch_size,
                "compile_s": compile_s,
                "versions": {p: version(p) for p in ("jax", "jaxlib", "gymnax", "flax", "optax")},
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
        jax.block_until_ready(fns[seeds](*args[seeds]))
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(json.dumps({"impl": "lfx", "seeds": seeds, "seconds": dt, "cpu_seconds": cpu}), flush=True)


def serve(impl: str, train, seed_counts, steps_per_seed: int, packages) -> None:
    """A benchmark worker's protocol, shared by every lfx and peer worker of scripts/bench_*.py.

    `train(seeds) -> (fn, args)`: the function to time for `seeds` seeds (already vmapped for
    seeds > 1) and its arguments. Compiles each once (`lower().compile()`, timed), makes one
    untimed warm-up call, prints one JSON line {"ready": ...}, then answers every stdin line
    "run <seeds>" with one JSON line holding the wall and CPU time of one call.
    """
    import jax  # noqa: PLC0415 (the driver itself never imports jax)

    fns, args, compile_s = {}, {}, {}
    for seeds in seed_counts:
        fn, arg = train(seeds)
        t0 = time.perf_counter()
        compiled = jax.jit(fn).lower(*arg).compile()
        compile_s[seeds] = time.perf_counter() - t0
        jax.block_until_ready(compiled(*arg))  # warm-up call, not timed
        fns[seeds], args[seeds] = compiled, arg
    from importlib.metadata import version  # noqa: PLC0415

    print(json.dumps({"ready": True, "impl": impl, "steps_per_seed": steps_per_seed,
                      "compile_s": compile_s, "versions": {p: version(p) for p in packages},
                      "device": str(jax.devices()[0])}), flush=True)
    for line in sys.stdin:
        cmd, seeds = line.split()
        if cmd != "run":
            break
        seeds = int(seeds)
        t0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(fns[seeds](*args[seeds]))
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(json.dumps({"impl": impl, "seeds": seeds, "seconds": dt, "cpu_seconds": cpu}), flush=True)


# ---------------------------------------------------------------------------------------------
# Driver.


class Worker:
    """A long-lived worker subprocess speaking the one-JSON-line-per-command protocol."""

    def __init__(self, name: str, argv: list[str], env: dict):
        self.name = name
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=HERE
        )
        self.info = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} worker exited (code {self.proc.wait()}); see stderr.")
        return json.loads(line)

    def run(self, seeds: int) -> tuple[float, float]:
        """One timed call: (wall seconds, CPU seconds of the worker process, all threads)."""
        self.proc.stdin.write(f"run {seeds}\n")
        self.proc.stdin.flush()
        out = self._read()
        return out["seconds"], out["cpu_seconds"]

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit 0\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=60)


def worker_env(device: str, single_thread: bool = False) -> dict:
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = {"cpu": "cpu", "gpu": "cuda"}[device]
    if single_thread:
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + flags).strip()
    env["PYTHONPATH"] = os.path.dirname(HERE) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_case(
    cfg: dict, rounds: int, device: str, peer_python: str, single_thread: bool = False, *,
    lfx_script: str = __file__, peer_worker: str = PEER_WORKER,
) -> dict:
    """Interleaved rounds of `lfx_script --_worker` and `peer_worker` on `cfg` (bench_sac.py reuses
    this driver with its own two workers)."""
    env = worker_env(device, single_thread)
    blob = json.dumps(cfg)
    lfx = Worker("lfx", [sys.executable, os.path.abspath(lfx_script), "--_worker", blob], env)
    peer = Worker("rejax", [peer_python, peer_worker, blob], env)
    steps = lfx.info["steps_per_seed"]
    if peer.info["steps_per_seed"] != steps:
        raise RuntimeError(f"step counts differ: lfx {steps}, rejax {peer.info['steps_per_seed']}")
    results = []
    try:
        for seeds in cfg["seed_counts"]:
            runs = []
            for r in range(rounds):
                t_lfx, c_lfx = lfx.run(seeds)
                t_peer, c_peer = peer.run(seeds)
                row = {
                    "round": r,
                    "lfx_s": t_lfx,
                    "peer_s": t_peer,
                    "lfx_cpu_s": c_lfx,
                    "peer_cpu_s": c_peer,
                    "lfx_sps": seeds * steps / t_lfx,
                    "peer_sps": seeds * steps / t_peer,
                    "ratio": t_peer / t_lfx,
                    "cpu_ratio": c_peer / c_lfx,
                }
                runs.append(row)
                print(
                    f"  {cfg['env_name']} seeds={seeds} round {r}: lfx {t_lfx:.3f} s "
                    f"(cpu {c_lfx:.3f} s, {row['lfx_sps']:.3g} steps/s), rejax {t_peer:.3f} s "
                    f"(cpu {c_peer:.3f} s, {row['peer_sps']:.3g} steps/s), "
                    f"ratio {row['ratio']:.3f} (cpu-time ratio {row['cpu_ratio']:.3f})",
                    flush=True,
                )
            results.append(
                {
                    "env_name": cfg["env_name"],
                    "seeds": seeds,
                    "steps_per_seed": steps,
                    "runs": runs,
                    "lfx_median_sps": statistics.median(x["lfx_sps"] for x in runs),
                    "peer_median_sps": statistics.median(x["peer_sps"] for x in runs),
                    "median_ratio": statistics.median(x["ratio"] for x in runs),
                    "lfx_median_cpu_sps": statistics.median(
                        seeds * steps / x["lfx_cpu_s"] for x in runs
                    ),
                    "peer_median_cpu_sps": statistics.median(
                        seeds * steps / x["peer_cpu_s"] for x in runs
                    ),
                    "median_cpu_ratio": statistics.median(x["cpu_ratio"] for x in runs),
                    "lfx_compile_s": lfx.info["compile_s"][str(seeds)],
                    "peer_compile_s": peer.info["compile_s"][str(seeds)],
                }
            )
    finally:
        lfx.close()
        peer.close()
    return {
        "config": cfg,
        "lfx": {k: lfx.info[k] for k in ("versions", "device")},
        "rejax": {k: peer.info[k] for k in ("versions", "device")},
        "results": results,
    }


def print_table(out: dict) -> None:
    """The markdown table of `out["cases"]` (docs/benchmarks/*.md rows)."""
    first = out["cases"][0]
    print(f"\nlfx:   {first['lfx']['device']}  {first['lfx']['versions']}")
    print(f"rejax: {first['rejax']['device']}  {first['rejax']['versions']}\n")
    print("| env | seeds | steps/seed | lfx steps/s (median) | rejax steps/s (median) "
          "| median ratio lfx/rejax | per CPU-second lfx / rejax | median CPU-time ratio "
          "| compile s lfx / rejax |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case in out["cases"]:
        for r in case["results"]:
            print(
                f"| {r['env_name']} | {r['seeds']} | {r['steps_per_seed']} "
                f"| {r['lfx_median_sps']:.3g} | {r['peer_median_sps']:.3g} "
                f"| {r['median_ratio']:.3f} "
                f"| {r['lfx_median_cpu_sps']:.3g} / {r['peer_median_cpu_sps']:.3g} "
                f"| {r['median_cpu_ratio']:.3f} "
                f"| {r['lfx_compile_s']:.1f} / {r['peer_compile_s']:.1f} |"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--total_timesteps", type=float, default=2e5, help="per seed (CPU preset)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per case (>= 5)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 8], help="seed counts (CPU preset)")
    p.add_argument("--preset", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--peer_python", default="/opt/peers/rejax/bin/python")
    p.add_argument(
        "--single_thread",
        action="store_true",
        help="CPU: one XLA compute thread per worker (steadier on an oversubscribed machine)",
    )
    p.add_argument("--json_out", default=None)
    p.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._worker is not None:
        lfx_worker(json.loads(args._worker))
        return
    if args.rounds < 1:
        raise ValueError("--rounds must be >= 1 (use >= 5 for a reported figure).")
    if not os.path.exists(args.peer_python):
        raise ValueError(
            f"peer python {args.peer_python} not found; create it with "
            "`python -m venv /opt/peers/rejax && /opt/peers/rejax/bin/pip install rejax==0.1.3 "
            "'gymnax<1.0'` or pass --peer_python."
        )
    if args.preset == "gpu":
        cases = GPU_CASES
    else:
        batch = BASE["num_envs"] * BASE["num_steps"]
        total = int(args.total_timesteps) // batch * batch  # whole updates on both sides
        if total < batch:
            raise ValueError(f"--total_timesteps must be >= one batch ({batch} steps).")
        cases = [{**BASE, "total_timesteps": total, "seed_counts": args.seeds}]

    t0 = time.time()
    out = {
        "argv": sys.argv,
        "device": args.device,
        "single_thread": args.single_thread,
        "rounds": args.rounds,
        "cases": [],
    }
    for cfg in cases:
        print(f"case {cfg['env_name']} seeds {cfg['seed_counts']}:", flush=True)
        out["cases"].append(run_case(
            cfg, args.rounds, args.device, args.peer_python, args.single_thread
        ))
    out["wall_s"] = time.time() - t0

    print_table(out)
    if args.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
