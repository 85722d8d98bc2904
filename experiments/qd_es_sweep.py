"""A small sweep of OpenAI-ES's step size and learning rate on one sparse task, to pick the baseline's
hyperparameters once (not per seed, not per task).

    python experiments/qd_es_sweep.py --es_sigmas=0.02,0.05,0.1,0.3,1.0 --es_lrs=0.01,0.05 \
        --workdir=runs/qd_es_sweep/curling
    python experiments/qd_es_sweep.py --config=experiments/configs/qd_sparse.py:maze \
        --config.seed=100 --config.num_seeds=2
    python experiments/qd_es_sweep.py --workdir=runs/qd_es_sweep/curling --resume

The default config (`qd_sparse.py:es_sweep`) is Curling with tuning seeds 100, 101 (`seed`,
`num_seeds`), disjoint from the comparison's seeds (0-4). `es_sigma` and `es_lr` are traced
`HParams`, so the whole grid x seeds is one vmapped jitted call per chunk of generations, through
the harness (checkpoints, exact resume), as `experiments/qd_sparse.py --sweep` runs it. For every
(sigma, lr) it records, per seed, the final coverage of the ground-truth grid and the best reward,
with the config's budget and population (2 x population_size, as in experiments/qd_sparse.py).
Writes `<workdir>/openai_es/metrics.jsonl`, `<workdir>/results.jsonl` and `<workdir>/es_sweep.json`
(the table docs/results/qd_es_sweep.json holds).
"""

from __future__ import annotations

import time

from absl import flags, logging

from lfx.experiment import CellLog, ConfigError, cli
from lfx.qd import comparison as qdc

FLAGS = cli.define_flags("qd_sparse.py:es_sweep")
_SIGMAS = flags.DEFINE_list("es_sigmas", ["0.02", "0.05", "0.1", "0.3", "1.0"],
                            "OpenAI-ES perturbation std values (hparams.es_sigma)")
_LRS = flags.DEFINE_list("es_lrs", ["0.01", "0.05"], "OpenAI-ES Adam learning rates (hparams.es_lr)")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    cd = cli.get_config()
    if tuple(cd.algorithms) != ("openai_es",):
        raise ConfigError(f"qd_es_sweep runs OpenAI-ES only; drop --config.algorithms (got "
                          f"{tuple(cd.algorithms)}).")
    comp = qdc.build(cd, f"es_sigma={','.join(_SIGMAS.value)};es_lr={','.join(_LRS.value)}")
    c = comp.config
    wd = cli.open_workdir(f"qd_es_sweep_{c.env}", comp.fingerprint(), has_checkpoints=qdc.has_progress)
    with wd:
        cells = CellLog(wd)
        ids = [qdc.cell_id("openai_es", h, s) for h in range(len(comp.settings)) for s in comp.seeds]
        if not all(cells.get(i) for i in ids):
            t = time.time()
            metrics = qdc.run_scan(comp, "openai_es", wd, resume=FLAGS.resume, progress=FLAGS.progress)
            for cell, row in qdc.scan_rows(comp, "openai_es", metrics, time.time() - t):
                cells.record(cell, row)
        rows = []
        for h, hp in enumerate(comp.settings):
            per_seed = [cells.get(qdc.cell_id("openai_es", h, s)) for s in comp.seeds]
            per_seed = [{k: r[k] for k in ("seed", "evaluations", "coverage", "uniformity",
                                           "reward_areas", "best_reward")} for r in per_seed]
            row = {"sigma": float(hp.es_sigma), "learning_rate": float(hp.es_lr), "per_seed": per_seed,
                   "coverage": sum(r["coverage"] for r in per_seed) / len(per_seed),
                   "best_reward": sum(r["best_reward"] for r in per_seed) / len(per_seed),
                   "found": sum(r["best_reward"] > 0 for r in per_seed)}
            rows.append(row)
            print(f"sigma {row['sigma']:g} lr {row['learning_rate']:g}: coverage {row['coverage']:.3f} "
                  f"best reward {row['best_reward']:.3f} found {row['found']}/{len(per_seed)}")
        path = wd.write_json("es_sweep.json", {
            "env": c.env, "budget": c.budget, "population": c.baseline_config().es_population_size,
            "seeds": comp.seeds, "rows": rows})
    print(f"Wrote {path}")


if __name__ == "__main__":
    cli.run(main)
