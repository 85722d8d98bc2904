"""MAP-Elites generations per second: lfx.qd.map_elites against QDax 0.5.0, same task, interleaved.

    python scripts/bench_map_elites.py                                # CPU: both cases, 1 and 8 seeds
    python scripts/bench_map_elites.py --rounds 7 --json_out runs/bench_map_elites.json
    python scripts/bench_map_elites.py --cases cvt_iso --seeds 1 --generations 50

Task: the planar arm (100 joints, genomes in [0, 1]^100, fitness -std, descriptor = end effector) as a
pure function on both sides: lfx's `lfx.qd.planar_arm` and QDax's `qdax.tasks.arm` (the same formula).
Both run MAP-Elites with batch 100 and iso-line variation (sigma_iso 0.005, sigma_line 0.05, genomes
clipped to [0, 1]: QDax's arm example) or Gaussian mutation (sigma 0.05), on

* grid_iso: a 50 x 50 grid (2500 cells; lfx finds cells by floor, QDax by nearest centre);
* cvt_iso:  1024 CVT cells, the SAME centroids on both sides (lfx's `cvt_centroids`, passed to QDax);
* grid_gauss: the 50 x 50 grid with Gaussian mutation (lfx's default MAP-Elites).

One timed call = `--generations` generations in one jitted `lax.scan` (lfx: `recipe.run`, which also
updates lfx.qd's Tracker and the repertoire metrics; QDax: `MAPElites.scan_update`, with
`default_qd_metrics`), vmapped over seeds for seeds > 1. Each side runs in its own long-lived
subprocess (QDax in its venv, `--peer_python`, default /opt/peers/qdax/bin/python; created with
`python -m venv /opt/peers/qdax && /opt/peers/qdax/bin/pip install qdax==0.5.0 jax==0.10.2`), compiles
once, makes one untimed warm-up call, then answers timed calls; the driver alternates lfx, QDax,
lfx, QDax, ... (scripts/bench_ppo.py's `serve` / `Worker`). Reported: each side's median
generations/s and the medians of the per-round ratios QDax time / lfx time, wall and CPU (all
threads of the worker process; the steadier figure on a shared machine). A ratio > 1: lfx faster.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from bench_ppo import Worker, serve, worker_env  # this script's folder is first on sys.path

HERE = os.path.dirname(os.path.abspath(__file__))

PEER_WORKER = os.path.join(HERE, "peers", "qdax_map_elites.py")
BASE = {"num_dofs": 100, "batch_size": 100, "sigma": 0.005, "line_sigma": 0.05, "grid_bins": 50,
        "num_centroids": 1024, "cvt_samples": 25_000, "cvt_iterations": 30, "cvt_seed": 0}
CASES = {"grid_iso": {"repertoire": "grid", "emitter": "iso_line"},
         "cvt_iso": {"repertoire": "cvt", "emitter": "iso_line"},
         "grid_gauss": {"repertoire": "grid", "emitter": "gaussian", "sigma": 0.05}}


def _config(cfg):
    from lfx.qd.map_elites import MapElitesConfig  # noqa: PLC0415

    return MapElitesConfig(population_size=cfg["batch_size"], repertoire=cfg["repertoire"],
                           grid_bins=cfg["grid_bins"], num_centroids=cfg["num_centroids"],
                           cvt_samples=cfg["cvt_samples"], cvt_iterations=cfg["cvt_iterations"],
                           cvt_seed=cfg["cvt_seed"], emitter=cfg["emitter"], clip=(0.0, 1.0), qd_offset=1.0)


def lfx_worker(cfg: dict) -> None:
    import jax  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from lfx.qd.map_elites import HParams, make_map_elites  # noqa: PLC0415
    from lfx.qd.planar_arm import make_planar_arm_task  # noqa: PLC0415

    task = make_planar_arm_task(cfg["num_dofs"])
    recipe = make_map_elites(task, _config(cfg), budget=10**9)
    gens = cfg["num_generations"]
    hp = HParams(sigma=cfg["sigma"], line_sigma=cfg["line_sigma"])
    rep = jax.jit(recipe.init)(jax.random.key(0), hp).search.repertoire
    if cfg["repertoire"] == "cvt":  # the peer reads the same centroids
        np.testing.assert_array_equal(np.asarray(rep.centroids), np.load(cfg["centroids"]))

    def run(state):
        return recipe.run(state, hp, num_updates=gens)

    def train(seeds):
        keys = jax.random.split(jax.random.key(0), seeds)
        if seeds == 1:
            return run, (jax.jit(recipe.init)(keys[0], hp),)
        return jax.vmap(run), (jax.jit(jax.vmap(recipe.init, in_axes=(0, None)))(keys, hp),)

    serve("lfx", train, cfg["seed_counts"], cfg["batch_size"] * gens, ("jax", "jaxlib", "flax"))


def write_centroids(cfg: dict, path: str) -> None:
    import jax  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from lfx.qd import repertoire as rl  # noqa: PLC0415

    if cfg["repertoire"] == "cvt":
        c = rl.cvt_centroids(jax.random.key(cfg["cvt_seed"]), cfg["num_centroids"], 0.0, 1.0, cfg["cvt_samples"],
                             num_iterations=cfg["cvt_iterations"])
    else:
        c = rl.grid_centroids(cfg["grid_bins"], 0.0, 1.0)
    np.save(path, np.asarray(c))


def run_case(name: str, cfg: dict, rounds: int, device: str, peer_python: str) -> dict:
    env = worker_env(device)
    blob = json.dumps(cfg)
    lfx = Worker("lfx", [sys.executable, os.path.abspath(__file__), "--_worker", blob], env)
    peer = Worker("qdax", [peer_python, PEER_WORKER, blob], env)
    gens = cfg["num_generations"]
    results = []
    try:
        for seeds in cfg["seed_counts"]:
            runs = []
            for r in range(rounds):
                t_lfx, c_lfx = lfx.run(seeds)
                t_peer, c_peer = peer.run(seeds)
                row = {"round": r, "lfx_s": t_lfx, "qdax_s": t_peer, "lfx_cpu_s": c_lfx, "qdax_cpu_s": c_peer,
                       "ratio": t_peer / t_lfx, "cpu_ratio": c_peer / c_lfx}
                runs.append(row)
                print(f"  {name} seeds={seeds} round {r}: lfx {t_lfx:.3f} s (cpu {c_lfx:.3f}), qdax {t_peer:.3f} s "
                      f"(cpu {c_peer:.3f}), ratio {row['ratio']:.2f} (cpu {row['cpu_ratio']:.2f})", flush=True)
            results.append({
                "seeds": seeds, "runs": runs,
                "lfx_gens_per_s": statistics.median(seeds * gens / x["lfx_s"] for x in runs),
                "qdax_gens_per_s": statistics.median(seeds * gens / x["qdax_s"] for x in runs),
                "median_ratio": statistics.median(x["ratio"] for x in runs),
                "median_cpu_ratio": statistics.median(x["cpu_ratio"] for x in runs),
                "lfx_compile_s": lfx.info["compile_s"][str(seeds)],
                "qdax_compile_s": peer.info["compile_s"][str(seeds)]})
    finally:
        lfx.close()
        peer.close()
    return {"case": name, "config": cfg, "lfx": {k: lfx.info[k] for k in ("versions", "device")},
            "qdax": {k: peer.info[k] for k in ("versions", "device")}, "results": results}


def print_table(out: dict) -> None:
    first = out["cases"][0]
    print(f"\nlfx:  {first['lfx']['device']}  {first['lfx']['versions']}")
    print(f"qdax: {first['qdax']['device']}  {first['qdax']['versions']}\n")
    print("| case | seeds | lfx generations/s | QDax generations/s | median ratio (wall) | median ratio (CPU) "
          "| compile s lfx / QDax |")
    print("|---|---|---|---|---|---|---|")
    for case in out["cases"]:
        for r in case["results"]:
            print(f"| {case['case']} | {r['seeds']} | {r['lfx_gens_per_s']:.3g} | {r['qdax_gens_per_s']:.3g} "
                  f"| {r['median_ratio']:.2f} | {r['median_cpu_ratio']:.2f} "
                  f"| {r['lfx_compile_s']:.1f} / {r['qdax_compile_s']:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ",".join(CASES))
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per case (>= 5)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    p.add_argument("--generations", type=int, default=100, help="generations per timed call")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--peer_python", default="/opt/peers/qdax/bin/python")
    p.add_argument("--json_out", default=None)
    p.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._worker is not None:
        lfx_worker(json.loads(args._worker))
        return
    if args.rounds < 1 or args.generations < 1:
        raise ValueError("--rounds and --generations must be >= 1 (use >= 5 rounds for a reported figure).")
    if not os.path.exists(args.peer_python):
        raise ValueError(f"peer python {args.peer_python} not found; create it with `python -m venv /opt/peers/qdax "
                         "&& /opt/peers/qdax/bin/pip install qdax==0.5.0 jax==0.10.2` or pass --peer_python.")
    names = args.cases.split(",")
    for n in names:
        if n not in CASES:
            raise ValueError(f"Unknown case {n!r}; choose from {list(CASES)}.")
    t0 = time.time()
    out = {"argv": sys.argv, "device": args.device, "rounds": args.rounds, "cases": []}
    with tempfile.TemporaryDirectory() as tmp:
        for n in names:
            cfg = {**BASE, **CASES[n], "num_generations": args.generations, "seed_counts": args.seeds,
                   "centroids": os.path.join(tmp, f"{n}.npy")}
            write_centroids(cfg, cfg["centroids"])
            print(f"case {n}:", flush=True)
            out["cases"].append(run_case(n, cfg, args.rounds, args.device, args.peer_python))
    out["wall_s"] = time.time() - t0
    print_table(out)
    if args.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
