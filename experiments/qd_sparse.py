"""NS / TAXONS / SERENE / STAX and baselines on sparse-reward tasks at a fixed evaluation budget.

    python experiments/qd_sparse.py --config=experiments/configs/qd_sparse.py:curling \
        --workdir=runs/qd_sparse/curling

Writes `<workdir>/metrics.jsonl` (one line per algorithm, seed and logged point: evaluations,
coverage, uniformity, reward areas, best reward), `<workdir>/summary.json` (final values, mean and
std over seeds) and `<workdir>/curves.png` (mean over seeds against evaluations).
"""

from __future__ import annotations

import json
import os
import time

import jax
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from lfx.qd.autoencoder import AEConfig
from lfx.qd.baselines import BASELINES, BaselineConfig
from lfx.qd.explore import ExplorerConfig, run_explorer
from lfx.qd.ns import NSConfig
from lfx.qd.serene import SereneConfig, run_serene
from lfx.qd.task import make_task

_CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/qd_sparse.py:curling")
_WORKDIR = flags.DEFINE_string("workdir", None, "output folder (default runs/qd_sparse/<env>)")
_ALGOS = flags.DEFINE_list("algorithms", None, "subset of the config's algorithms")

METRICS = ("coverage", "uniformity", "reward_areas", "best_reward")


def run_one(algo, seed, task, c):
    key = jax.random.key(seed)
    ns = NSConfig(population_size=c.population_size, offspring_per_parent=c.offspring_per_parent,
                  archive_capacity=c.archive_capacity, archive_add=c.archive_add, k=c.k, sigma=c.sigma)
    ae = AEConfig(image_size=c.image_size, latent_dim=c.latent_dim)
    mode = {"ns": "ns", "taxons": "taxons", "stax": "stax", "serene": "ns"}.get(algo)
    if algo in ("ns", "taxons"):
        ex = ExplorerConfig(mode=mode, ns=ns, ae=ae, retrain_every=c.retrain_every)
        _, _, hist = run_explorer(key, task, ex, c.budget)
        return hist, {}
    if algo in ("serene", "stax"):
        ex = ExplorerConfig(mode=mode, ns=ns, ae=ae, retrain_every=c.retrain_every)
        cfg = SereneConfig(explorer=ex, chunk_size=c.chunk_size, emitter_population=c.emitter_population,
                           stagnation_generations=c.stagnation_generations)
        _, hist, stats = run_serene(key, task, cfg, c.budget)
        stats = {k: v for k, v in stats.items() if k != "phases"}
        stats["reward_archive_best"] = max(stats.pop("reward_archive"), default=0.0)
        return hist, stats
    bcfg = BaselineConfig(population_size=2 * c.population_size, sigma=c.sigma, es_sigma=c.es_sigma,
                          es_learning_rate=c.es_learning_rate)
    _, hist = BASELINES[algo](key, task, bcfg, c.budget)
    return hist, {}


def thin(hist, n=60):
    """Keeps about n points of a history, always the last."""
    idx = sorted(set(np.linspace(0, len(hist) - 1, n).astype(int).tolist()))
    return [hist[i] for i in idx]


def main(argv):
    del argv
    c = _CONFIG.value
    workdir = _WORKDIR.value or os.path.join("runs", "qd_sparse", c.env)
    os.makedirs(workdir, exist_ok=True)
    task = make_task(c.env, hidden=tuple(c.hidden), image_size=c.image_size, **dict(c.env_kwargs))
    algos = _ALGOS.value or list(c.algorithms)
    # Re-running some algorithms replaces their rows and summaries, keeping the others'.
    summary, metrics_path, summary_path = {}, os.path.join(workdir, "metrics.jsonl"), os.path.join(workdir, "summary.json")
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            summary = {a: r for a, r in json.load(f)["results"].items() if a not in algos}
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            keep = [line for line in f if json.loads(line)["algorithm"] not in algos]
        with open(metrics_path, "w") as f:
            f.writelines(keep)
    with open(metrics_path, "a") as f:
        for algo in algos:
            finals = []
            for seed in c.seeds:
                t = time.time()
                hist, extra = run_one(algo, seed, task, c)
                wall = time.time() - t
                f.writelines(json.dumps({"algorithm": algo, "seed": seed, **h}) + "\n" for h in thin(hist))
                f.flush()
                finals.append({**hist[-1], **extra, "wall_s": wall})
                logging.info("%s %s seed %d: %s (%.1f s)", c.env, algo, seed, hist[-1], wall)
            summary[algo] = {
                k: {"mean": float(np.mean([r[k] for r in finals])), "std": float(np.std([r[k] for r in finals])),
                    "per_seed": [r[k] for r in finals]}
                for k in finals[0]
            }
            with open(summary_path, "w") as g:
                json.dump({"env": c.env, "budget": c.budget, "seeds": list(c.seeds), "results": summary}, g, indent=1)
    plot(workdir, c.env)


def plot(workdir, env):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.2))
    for algo in sorted({r["algorithm"] for r in rows}):
        rs = [r for r in rows if r["algorithm"] == algo]
        grid = np.linspace(0, max(r["evaluations"] for r in rs), 50)
        for ax, m in zip(axes, METRICS):
            curves = []
            for seed in sorted({r["seed"] for r in rs}):
                pts = sorted((r["evaluations"], r[m]) for r in rs if r["seed"] == seed)
                curves.append(np.interp(grid, [p[0] for p in pts], [p[1] for p in pts]))
            ax.plot(grid, np.mean(curves, 0), label=algo)
            ax.set_title(f"{env}: {m}")
            ax.set_xlabel("evaluations")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, "curves.png"), dpi=90)


if __name__ == "__main__":
    app.run(main)
