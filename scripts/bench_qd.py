"""Policy evaluations per second: lfx.qd vs QDax MAP-Elites on the same task, interleaved.

    python scripts/bench_qd.py --repeats 5 --generations 5 --out docs/benchmarks/qd_raw.json

Per task (the hard maze at its paper setting, 2000-step episodes, and Curling, 500 steps of 1/60 s
as in the paper), with a population of 100 MLP policies rolled out in one vmapped call, it times:

* lfx: one jitted MAP-Elites generation (lfx.qd.baselines, 50 x 50 grid, Gaussian mutation
  sigma 0.05), and the bare population evaluator;
* QDax 0.5.0 (run in its own venv, /opt/peers/qdax, as a long-lived subprocess): `MAPElites.update`
  with a `MixingEmitter` doing the same Gaussian mutation, a 50 x 50 Euclidean-centroid repertoire,
  and as scoring function the same lfx environment rollout (the task is shared, so the ratio measures
  the QD loop around identical rollouts).

Runs alternate lfx, QDax, lfx, QDax, ...; the figure reported is the median over repeats of the
per-repeat ratio lfx / QDax evaluations per second. The machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

TASKS = {"HardMaze-sparse": {}, "Curling-sparse": {}}
POP = 100
PEER_PY = "/opt/peers/qdax/bin/python"


def _task(name):
    from lfx.qd.task import make_task  # noqa: PLC0415

    return make_task(name, hidden=(16,), image_size=0, **TASKS[name])


def peer_server():
    """Runs inside the QDax venv: reads 'task generations' lines, answers seconds per run."""

    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    from qdax.core.containers.mapelites_repertoire import compute_euclidean_centroids  # noqa: PLC0415
    from qdax.core.emitters.standard_emitters import MixingEmitter  # noqa: PLC0415
    from qdax.core.map_elites import MAPElites  # noqa: PLC0415

    built = {}

    def build(name):
        task = _task(name)

        def scoring(genomes, key):
            ev = task.evaluate(key, genomes)
            return ev.fitness, ev.descriptor, {}

        def mutate(x, key):
            return jnp.clip(x + 0.05 * jax.random.normal(key, x.shape), -5.0, 5.0)

        emitter = MixingEmitter(mutation_fn=mutate, variation_fn=None, variation_percentage=0.0, batch_size=POP)
        me = MAPElites(scoring_function=scoring, emitter=emitter, metrics_function=lambda r: {})
        centroids = compute_euclidean_centroids((50, 50), list(task.descriptor_low), list(task.descriptor_high))
        key = jax.random.key(0)
        genomes = task.init_genomes(key, POP)
        repertoire, emitter_state, _ = me.init(genomes, centroids, key)
        update = jax.jit(me.update)
        out = update(repertoire, emitter_state, key)
        jax.block_until_ready(out)
        return [update, out[0], out[1]]

    for line in sys.stdin:
        name, gens = line.split()
        if name not in built:
            built[name] = build(name)
        update, rep, es = built[name]
        key = jax.random.key(1)
        t = time.perf_counter()
        for i in range(int(gens)):
            rep, es, _ = update(rep, es, jax.random.fold_in(key, i))
        jax.block_until_ready(rep.fitnesses)
        built[name][1:] = [rep, es]
        print(time.perf_counter() - t, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--generations", type=int, default=5)
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset of " + ",".join(TASKS))
    ap.add_argument("--out", default=None)
    ap.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args()
    if args.peer:
        return peer_server()

    import jax  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from lfx.qd.baselines import BaselineConfig, map_elites_functions  # noqa: PLC0415
    from lfx.qd.recipe import HParams  # noqa: PLC0415
    from lfx.qd.task import init_tracker  # noqa: PLC0415

    peer = None
    if not args.no_peer and os.path.exists(PEER_PY):
        env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        peer = subprocess.Popen([PEER_PY, os.path.abspath(__file__), "--peer"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=env)
    results = {"device": str(jax.devices()[0]), "population": POP, "generations_per_run": args.generations,
               "repeats": args.repeats, "tasks": {}}
    for name in args.tasks.split(","):
        if name not in TASKS:
            raise ValueError(f"Unknown task {name!r}; choose from {list(TASKS)}.")
        task = _task(name)
        init, step = (jax.jit(f) for f in map_elites_functions(task, BaselineConfig(population_size=POP)))
        evaluate = jax.jit(task.evaluate)
        key = jax.random.key(0)
        me, tr = init(key, init_tracker(task, 10**9))
        jax.block_until_ready(step(key, me, tr, HParams()))
        jax.block_until_ready(evaluate(key, task.init_genomes(key, POP)))
        if peer:
            peer.stdin.write(f"{name} 1\n")
            peer.stdin.flush()
            float(peer.stdout.readline())  # warm-up (compiles)
        rows = []
        for r in range(args.repeats):
            t = time.perf_counter()
            for i in range(args.generations):
                me, tr = step(jax.random.fold_in(key, i), me, tr, HParams())
            jax.block_until_ready(me.fitness)
            t_lfx = time.perf_counter() - t
            g = task.init_genomes(key, POP)
            t = time.perf_counter()
            for i in range(args.generations):
                out = evaluate(jax.random.fold_in(key, i), g)
            jax.block_until_ready(out.fitness)
            t_eval = time.perf_counter() - t
            t_peer = None
            if peer:
                peer.stdin.write(f"{name} {args.generations}\n")
                peer.stdin.flush()
                t_peer = float(peer.stdout.readline())
            n = POP * args.generations
            row = {"lfx_map_elites_evals_per_s": n / t_lfx, "lfx_evaluator_evals_per_s": n / t_eval}
            if t_peer:
                row["qdax_map_elites_evals_per_s"] = n / t_peer
                row["ratio_lfx_over_qdax"] = t_peer / t_lfx
            rows.append(row)
            print(name, r, {k: round(v, 1) for k, v in row.items()}, flush=True)
        summary = {k: float(np.median([row[k] for row in rows])) for k in rows[0]}
        results["tasks"][name] = {"median": summary, "runs": rows}
        print(name, "median", summary, flush=True)
    if peer:
        peer.stdin.close()
        peer.wait(timeout=60)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
