"""Offline-RL speed: lfx.offline's TD3+BC and IQL against Unifloral (a public JAX peer), interleaved.

    python scripts/bench_offline.py                                   # CPU: both algorithms, 1 and 8 seeds
    python scripts/bench_offline.py --algorithms iql --rounds 7 --json_out runs/bench_offline.json

Identical work on both sides: one deterministic synthetic D4RL-shaped dataset (halfcheetah's shapes:
100,000 rows, observations [17], actions [6] in [-1, 1], 100 episodes of 1,000 steps, no terminals),
written once with lfx.offline.dataset.save (`--dataset`, generated if missing) and read by both
sides from the same .npz; (256, 256) ReLU networks, twin critics, batch 256 sampled uniformly with
replacement, Adam lr 3e-4, gamma 0.99, tau 0.005, observations normalised by the dataset's
mean/std; TD3+BC alpha 2.5, policy noise 0.2 clipped at 0.5, actor and targets every 2nd critic
step; IQL expectile 0.7, beta 3, weights clipped at 100. No evaluation on either side (lfx
eval_every=0; the peer's evaluation loop removed). Compile time is excluded (each worker compiles,
makes one untimed warm-up call, then times later calls) and reported separately.

Gradient steps are counted as critic gradient steps, G per seed (`--gradient_steps`): lfx runs
G `update`s; Unifloral's TD3+BC takes 2 critic steps + 1 actor step per batch, so it runs G / 2 of
its steps (the same G critic, G / 2 actor and G / 2 target updates); Unifloral's IQL step is one
V, Q and actor step, so it runs G. Each worker also reports the matmul FLOPs of one gradient step
(dot_general in the jaxpr of one step; see docs/benchmarks/offline.md for the comparison).

Modes: lfx `1` (recipe.train) and `8vmap` (jax.vmap(recipe.train, (0, None, None)) over 8 keys,
one call); peer `1`, `8seq` (its compiled 1-seed function 8 times in a row, one process: what
Unifloral's one-seed-per-process scripts do, less startup and compile) and `8vmap` (jax.vmap of the
peer's train over 8 keys, an extension its scripts do not use). Rounds alternate lfx / peer so both
see the same load; reported: the median over rounds of wall-time and CPU-time ratios (peer time /
lfx time: > 1 = lfx faster). Driver and worker protocol: scripts/bench_ppo.py (`Worker`); the peer
worker is scripts/peers/unifloral_offline.py, run by the peer venv's python (`--peer_python`,
default /opt/peers/unifloral/bin/python: jax<0.6 as Unifloral's requirements.txt pins).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import bench_ppo  # the shared Worker and env (this script's folder is first on sys.path)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PEER_WORKER = os.path.join(HERE, "peers", "unifloral_offline.py")
DEFAULT_DATASET = os.path.join(REPO, "runs", "bench_offline", "synthetic-halfcheetah-shapes")
ENV_NAME = "Bench-HalfCheetahShapes"  # a spec-only env registered by the lfx worker (no evaluation)
OBS_DIM, ACTION_DIM, ROWS, EPISODE = 17, 6, 100_000, 1_000

BASE = {"hidden_sizes": [256, 256], "batch_size": 256, "lr": 3e-4, "gamma": 0.99, "tau": 0.005,
        "alpha": 2.5, "policy_noise": 0.2, "noise_clip": 0.5, "policy_freq": 2,
        "expectile": 0.7, "beta": 3.0, "max_weight": 100.0, "num_seeds": 8}


# ---------------------------------------------------------------------------------------------
# The dataset.


def make_dataset(path: str, seed: int = 0) -> None:
    """A deterministic synthetic dataset of halfcheetah's shapes (written once; never overwritten).

    Per episode of 1,000 steps: s_{t+1} = 0.95 s_t + 0.3 e_t (per-dimension scales 0.5..3),
    a_t = tanh(W s_t + 0.3 u_t), r_t = s_t . c + 0.1 |a_t|^2 noise-free-ish; no terminals, a timeout
    at each episode's last row (halfcheetah never terminates)."""
    import numpy as np  # noqa: PLC0415

    from lfx.offline import dataset as ds  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    episodes = ROWS // EPISODE
    scale = np.linspace(0.5, 3.0, OBS_DIM).astype(np.float32)
    w = rng.normal(0, 0.3, (OBS_DIM, ACTION_DIM)).astype(np.float32)
    c = rng.normal(0, 1.0, OBS_DIM).astype(np.float32)
    obs = np.empty((episodes, EPISODE + 1, OBS_DIM), np.float32)
    obs[:, 0] = rng.normal(0, 1, (episodes, OBS_DIM))
    for t in range(EPISODE):
        obs[:, t + 1] = 0.95 * obs[:, t] + 0.3 * rng.normal(0, 1, (episodes, OBS_DIM))
    obs *= scale
    s, s2 = obs[:, :-1].reshape(ROWS, OBS_DIM), obs[:, 1:].reshape(ROWS, OBS_DIM)
    actions = np.tanh(s / scale @ w + 0.3 * rng.normal(0, 1, (ROWS, ACTION_DIM))).astype(np.float32)
    rewards = (s / scale @ c / OBS_DIM - 0.1 * np.sum(actions**2, -1)).astype(np.float32)
    timeouts = np.zeros(ROWS, bool)
    timeouts[EPISODE - 1::EPISODE] = True
    data = ds.Dataset(observations=s, actions=actions, rewards=rewards, next_observations=s2,
                      terminals=np.zeros(ROWS, bool), timeouts=timeouts)
    ds.save(path, data, {"env": ENV_NAME, "level": "synthetic", "seed": seed,
                         "command": "scripts/bench_offline.py make_dataset"})


# ---------------------------------------------------------------------------------------------
# lfx worker (a subprocess of this script, with the system python).


class _SpecEnv:
    """Only the spaces (lfx's recipe reads the spec from the env; eval_every=0 never steps it)."""

    def observation_space(self, params):
        import numpy as np  # noqa: PLC0415
        from gymnax.environments import spaces  # noqa: PLC0415

        return spaces.Box(-np.inf, np.inf, (OBS_DIM,))

    def action_space(self, params):
        from gymnax.environments import spaces  # noqa: PLC0415

        return spaces.Box(-1.0, 1.0, (ACTION_DIM,))


def _spec_env():
    from types import SimpleNamespace  # noqa: PLC0415

    return _SpecEnv(), SimpleNamespace(max_steps_in_episode=EPISODE)


def lfx_worker(cfg: dict) -> None:
    import jax  # noqa: PLC0415 (the driver itself never imports jax)
    from peers.unifloral_offline import matmul_flops  # noqa: PLC0415

    from lfx import envs  # noqa: PLC0415
    from lfx.offline import dataset as ds  # noqa: PLC0415
    from lfx.offline import recipe as rc  # noqa: PLC0415
    from lfx.offline.types import AgentConfig  # noqa: PLC0415

    envs.register(ENV_NAME, _spec_env)
    algo = cfg["algorithm"]
    config = rc.OfflineConfig(
        algorithm=algo, env_name=ENV_NAME, dataset=cfg["dataset"], total_gradient_steps=cfg["gradient_steps"],
        gradient_steps=cfg["lfx_steps_per_update"], batch_size=cfg["batch_size"], normalize_obs=True,
        agent=AgentConfig(hidden_sizes=tuple(cfg["hidden_sizes"]), num_critics=2, policy_freq=cfg["policy_freq"]),
        eval_every=0)
    recipe = rc.make_train(config)
    if algo == "td3_bc":
        hp = recipe.HParams(actor_lr=cfg["lr"], critic_lr=cfg["lr"], gamma=cfg["gamma"], tau=cfg["tau"],
                            alpha=cfg["alpha"], policy_noise=cfg["policy_noise"], noise_clip=cfg["noise_clip"])
    else:
        hp = recipe.HParams(actor_lr=cfg["lr"], critic_lr=cfg["lr"], value_lr=cfg["lr"], gamma=cfg["gamma"],
                            tau=cfg["tau"], expectile=cfg["expectile"], beta=cfg["beta"],
                            max_weight=cfg["max_weight"])
    data, meta = ds.load(cfg["dataset"])
    rc.check_dataset(recipe.spec, config, data, meta)
    batches = ds.to_batches(data)
    seeds = cfg["num_seeds"]
    keys = jax.random.split(jax.random.key(0), seeds)

    fns, compile_s = {}, {}
    t0 = time.perf_counter()
    one = jax.jit(recipe.train).lower(keys[0], hp, batches).compile()
    compile_s["1"] = time.perf_counter() - t0
    jax.block_until_ready(one(keys[0], hp, batches))  # warm-up, not timed
    fns["1"] = lambda: one(keys[0], hp, batches)

    def seq():
        out = None
        for i in range(seeds):
            out = jax.block_until_ready(one(keys[i], hp, batches))
        return out

    fns[f"{seeds}seq"] = seq
    compile_s[f"{seeds}seq"] = 0.0
    t0 = time.perf_counter()
    vm = jax.jit(jax.vmap(recipe.train, (0, None, None))).lower(keys, hp, batches).compile()
    compile_s[f"{seeds}vmap"] = time.perf_counter() - t0
    jax.block_until_ready(vm(keys, hp, batches))  # warm-up
    fns[f"{seeds}vmap"] = lambda: vm(keys, hp, batches)

    # matmul FLOPs of one algorithm update on a sampled batch (recipe.update's body, without the scan)
    state = recipe.init(keys[0], hp, batches)
    batch = rc.sample_batch(keys[0], batches, state, config.batch_size)
    step = matmul_flops(jax.make_jaxpr(lambda a, b, k: recipe.algorithm.update(
        a, b, k, recipe.spec, config.agent, hp))(state.agent, batch, keys[0]).jaxpr)
    if algo == "td3_bc":  # a critic step every update, the actor branch of the cond every policy_freq-th
        (branches,) = step["cond_branches"]
        per_step = step["flops"] + max(branches) / cfg["policy_freq"]
    else:
        per_step = step["flops"]

    from importlib.metadata import version  # noqa: PLC0415

    print(json.dumps({
        "ready": True, "impl": "lfx", "steps_per_seed": config.total_gradient_steps, "compile_s": compile_s,
        "matmul_flops_per_gradient_step": per_step, "flops_detail": step,
        "xla_flags": os.environ.get("XLA_FLAGS", ""), "python": sys.version.split()[0],
        "versions": {p: version(p) for p in ("jax", "jaxlib", "flax", "optax", "numpy")},
        "device": str(jax.devices()[0]),
    }), flush=True)
    for line in sys.stdin:
        cmd, mode = line.split()
        if cmd != "run":
            break
        t0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(fns[mode]())
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(json.dumps({"impl": "lfx", "mode": mode, "seconds": dt, "cpu_seconds": cpu}), flush=True)


# ---------------------------------------------------------------------------------------------
# Driver.


def _seeds(mode: str) -> int:
    """"8vmap" / "8seq" / "1" -> the number of seeds."""
    return int(mode.removesuffix("vmap").removesuffix("seq"))


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def run_case(cfg: dict, rounds: int, device: str, peer_python: str, single_thread: bool,
             lfx_modes: list[str], peer_modes: list[str]) -> dict:
    """Interleaved rounds; within a round, seed group by seed group: lfx then each peer mode."""
    env = bench_ppo.worker_env(device, single_thread)
    blob = json.dumps({**cfg, "modes": peer_modes})
    lfx = bench_ppo.Worker("lfx", [sys.executable, os.path.abspath(__file__), "--_worker", blob], env)
    peer = bench_ppo.Worker("unifloral", [peer_python, PEER_WORKER, blob], env)
    steps = cfg["gradient_steps"]
    for w in (lfx, peer):
        if w.info["steps_per_seed"] != steps:
            raise RuntimeError(f"{w.name} counts {w.info['steps_per_seed']} gradient steps, expected {steps}")
    groups = {}
    for mode in lfx_modes + peer_modes:
        groups.setdefault(_seeds(mode), None)
    runs = []
    try:
        for r in range(rounds):
            for n in groups:
                row = {"round": r, "seeds": n, "load": uptime()}
                for side, w, modes in (("lfx", lfx, lfx_modes), ("peer", peer, peer_modes)):
                    for mode in modes:
                        if _seeds(mode) != n:
                            continue
                        t, c = w.run(mode)
                        row[f"{side}_{mode}_s"], row[f"{side}_{mode}_cpu_s"] = t, c
                runs.append(row)
                print(f"  {cfg['algorithm']} round {r} seeds {n}: " + ", ".join(
                    f"{k[:-2]} {v:.3f}s" for k, v in row.items() if k.endswith("_s")), flush=True)
    finally:
        lfx.close()
        peer.close()

    results = []
    for lm in lfx_modes:
        n = _seeds(lm)
        for pm in peer_modes:
            if _seeds(pm) != n:
                continue
            rows = [x for x in runs if x["seeds"] == n]
            t_lfx, t_peer = [x[f"lfx_{lm}_s"] for x in rows], [x[f"peer_{pm}_s"] for x in rows]
            c_lfx, c_peer = [x[f"lfx_{lm}_cpu_s"] for x in rows], [x[f"peer_{pm}_cpu_s"] for x in rows]
            ratios = [p / q for p, q in zip(t_peer, t_lfx, strict=True)]
            cpu_ratios = [p / q for p, q in zip(c_peer, c_lfx, strict=True)]
            work = n * steps
            results.append({
                "seeds": n, "lfx_mode": lm, "peer_mode": pm, "gradient_steps_per_seed": steps,
                "lfx_median_sps": statistics.median(work / t for t in t_lfx),
                "peer_median_sps": statistics.median(work / t for t in t_peer),
                "median_ratio": statistics.median(ratios),
                "lfx_median_cpu_sps": statistics.median(work / c for c in c_lfx),
                "peer_median_cpu_sps": statistics.median(work / c for c in c_peer),
                "median_cpu_ratio": statistics.median(cpu_ratios),
                "ratios": ratios, "cpu_ratios": cpu_ratios,
                "lfx_compile_s": lfx.info["compile_s"][lm], "peer_compile_s": peer.info["compile_s"][pm],
            })
    return {"algorithm": cfg["algorithm"], "config": cfg, "runs": runs, "results": results,
            "lfx": {k: v for k, v in lfx.info.items() if k not in ("ready", "compile_s")},
            "peer": {k: v for k, v in peer.info.items() if k not in ("ready", "compile_s")}}


def print_table(out: dict) -> None:
    for case in out["cases"]:
        lf, pe = case["lfx"], case["peer"]
        print(f"\n{case['algorithm']}: lfx {lf['device']} {lf['versions']} | peer {pe['versions']}")
        print(f"  matmul FLOPs / gradient step: lfx {lf['matmul_flops_per_gradient_step']:.4g}, "
              f"unifloral {pe['matmul_flops_per_gradient_step']:.4g}")
    print("\n| algorithm | seeds | lfx mode | peer mode | lfx steps/s | peer steps/s | median wall ratio "
          "| lfx / peer steps per CPU-s | median CPU ratio | compile s lfx / peer |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for case in out["cases"]:
        for r in case["results"]:
            print(f"| {case['algorithm']} | {r['seeds']} | {r['lfx_mode']} | {r['peer_mode']} "
                  f"| {r['lfx_median_sps']:.4g} | {r['peer_median_sps']:.4g} | {r['median_ratio']:.3f} "
                  f"| {r['lfx_median_cpu_sps']:.4g} / {r['peer_median_cpu_sps']:.4g} "
                  f"| {r['median_cpu_ratio']:.3f} | {r['lfx_compile_s']:.1f} / {r['peer_compile_s']:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--algorithms", nargs="+", default=["td3_bc", "iql"], choices=["td3_bc", "iql"])
    p.add_argument("--gradient_steps", type=int, default=2_000, help="critic gradient steps per seed")
    p.add_argument("--lfx_steps_per_update", type=int, default=100,
                   help="lfx OfflineConfig.gradient_steps (one metrics row per this many steps)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (>= 5 for a reported figure)")
    p.add_argument("--lfx_modes", nargs="+", default=["1", "8vmap"])
    p.add_argument("--peer_modes", nargs="+", default=["1", "8seq", "8vmap"])
    p.add_argument("--dataset", default=DEFAULT_DATASET, help="generated there if missing")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--peer_python", default="/opt/peers/unifloral/bin/python")
    p.add_argument("--unifloral_src", default="/opt/peers/unifloral/src",
                   help="a copy of Unifloral's algorithms/ folder (commit f2dc127) lies under this")
    p.add_argument("--single_thread", action="store_true",
                   help="CPU: one XLA compute thread per worker (steadier on an oversubscribed machine)")
    p.add_argument("--json_out", default=None)
    p.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._worker is not None:
        lfx_worker(json.loads(args._worker))
        return
    if args.rounds < 1:
        raise ValueError("--rounds must be >= 1 (use >= 5 for a reported figure).")
    if not os.path.exists(args.peer_python):
        raise ValueError(f"peer python {args.peer_python} not found; see docs/benchmarks/offline.md for the "
                         "venv (python3 -m venv /opt/peers/unifloral; pip install 'jax<0.6' 'numpy<2' distrax "
                         "flax optax tyro) or pass --peer_python.")
    if args.gradient_steps % (BASE["policy_freq"] * args.lfx_steps_per_update):
        raise ValueError("--gradient_steps must be a multiple of 2 x --lfx_steps_per_update.")
    if not os.path.exists(args.dataset + ".npz"):
        print(f"writing the synthetic dataset {args.dataset}.npz", flush=True)
        make_dataset(args.dataset)
    t0 = time.time()
    out = {"argv": sys.argv, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "device": args.device,
           "single_thread": args.single_thread, "rounds": args.rounds, "load_before": uptime(),
           "nproc": os.cpu_count(), "cases": []}
    for algo in args.algorithms:
        cfg = {**BASE, "algorithm": algo, "gradient_steps": args.gradient_steps,
               "lfx_steps_per_update": args.lfx_steps_per_update, "dataset": os.path.abspath(args.dataset),
               "unifloral_src": args.unifloral_src}
        print(f"case {algo}:", flush=True)
        out["cases"].append(run_case(cfg, args.rounds, args.device, args.peer_python, args.single_thread,
                                     args.lfx_modes, args.peer_modes))
    out["load_after"] = uptime()
    out["wall_s"] = time.time() - t0
    print_table(out)
    if args.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
