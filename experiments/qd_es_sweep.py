"""A small sweep of OpenAI-ES's step size and learning rate on one sparse task, to pick the baseline's
hyperparameters once (not per seed, not per task).

    python experiments/qd_es_sweep.py --config=experiments/configs/qd_sparse.py:curling \
        --sigmas=0.02,0.05,0.1,0.3,1.0 --learning_rates=0.01,0.05 --seeds=100,101 \
        --out=docs/results/qd_es_sweep.json

Tuning seeds (100, 101) are disjoint from the comparison's seeds (0-4). For every (sigma, lr) it
records, per seed, the final coverage of the ground-truth grid and the best reward, with the
config's budget and population (2 x population_size, as in experiments/qd_sparse.py).
"""

from __future__ import annotations

import json
import time

import jax
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from lfx.qd.baselines import BaselineConfig, run_openai_es
from lfx.qd.task import make_task

_CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/qd_sparse.py:curling")
_SIGMAS = flags.DEFINE_list("sigmas", ["0.02", "0.05", "0.1", "0.3", "1.0"], "ES perturbation std values")
_LRS = flags.DEFINE_list("learning_rates", ["0.01", "0.05"], "Adam learning rates")
_SEEDS = flags.DEFINE_list("seeds", ["100", "101"], "tuning seeds (keep them apart from the comparison's)")
_OUT = flags.DEFINE_string("out", "docs/results/qd_es_sweep.json", "output JSON")


def main(argv):
    del argv
    c = _CONFIG.value
    task = make_task(c.env, hidden=tuple(c.hidden), image_size=0, **dict(c.env_kwargs))
    rows = []
    for sigma in map(float, _SIGMAS.value):
        for lr in map(float, _LRS.value):
            cfg = BaselineConfig(population_size=2 * c.population_size, es_sigma=sigma, es_learning_rate=lr)
            per_seed = []
            for seed in map(int, _SEEDS.value):
                t = time.time()
                _, hist = run_openai_es(jax.random.key(seed), task, cfg, c.budget)
                per_seed.append({**hist[-1], "seed": seed, "wall_s": time.time() - t})
            row = {"sigma": sigma, "learning_rate": lr, "per_seed": per_seed,
                   "coverage": float(np.mean([r["coverage"] for r in per_seed])),
                   "best_reward": float(np.mean([r["best_reward"] for r in per_seed])),
                   "found": sum(r["best_reward"] > 0 for r in per_seed)}
            rows.append(row)
            print(f"sigma {sigma:g} lr {lr:g}: coverage {row['coverage']:.3f} best reward {row['best_reward']:.3f} "
                  f"found {row['found']}/{len(per_seed)}", flush=True)
    with open(_OUT.value, "w") as f:
        json.dump({"env": c.env, "budget": c.budget, "population": 2 * c.population_size, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    app.run(main)
