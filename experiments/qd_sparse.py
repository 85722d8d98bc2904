"""NS / TAXONS / SERENE / STAX and baselines on a sparse-reward task at a fixed evaluation budget.

    python experiments/qd_sparse.py --config=experiments/configs/qd_sparse.py:curling \
        --workdir=runs/qd_sparse/curling
    python experiments/qd_sparse.py --config.algorithms="('ns', 'map_elites')" --sweep="sigma=0.02,0.05,0.1"
    python experiments/qd_sparse.py --workdir=runs/qd_sparse/curling --resume   # continue a killed run
    python experiments/qd_sparse.py --print_config                               # every field

Scan algorithms (ns, random, openai_es, map_elites) run every setting x seed in one vmapped jitted
call per chunk, with checkpoints and exact resume; host-loop ones (taxons, serene, stax) run one
cell per setting and seed (a resumed run skips the finished cells). Writes
`<workdir>/<algorithm>/metrics.jsonl|csv` (scan algorithms: one row per setting, seed and
generation), `<workdir>/results.jsonl` (one row per algorithm, setting and seed: final coverage,
uniformity, reward areas, best reward, wall time; host algorithms also their thinned history),
`<workdir>/summary.json` (mean / std / per seed) and `<workdir>/curves.png`.
"""

from __future__ import annotations

import time

from absl import flags, logging

from lfx.experiment import CellLog, cli
from lfx.qd import comparison as qdc
from lfx.qd.plots import plot_comparison

FLAGS = cli.define_flags("qd_sparse.py:curling", sweep=True)
_STOP_AFTER = flags.DEFINE_integer("stop_after", None, "Testing hook: stop the first scan algorithm "
                                   "after this many generations (a killed run).")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    comp = qdc.build(cli.get_config(), FLAGS.sweep)  # every check happens here, before the workdir
    c = comp.config
    print(f"{c.env}: {', '.join(c.algorithms)}; budget {c.budget} evaluations; "
          f"{len(comp.settings)} setting(s) x seeds {comp.seeds}.", flush=True)
    wd = cli.open_workdir(f"qd_sparse_{c.env}", comp.fingerprint(), has_checkpoints=qdc.has_progress)
    with wd:
        cells = CellLog(wd)
        for name in c.algorithms:
            ids = [(h, s) for h in range(len(comp.settings)) for s in comp.seeds]
            if name in qdc.HOST_ALGORITHMS:
                cells.run([(qdc.cell_id(name, h, s), qdc.host_cell(comp, name, h, s)) for h, s in ids],
                          progress=FLAGS.progress, desc=name)
            elif not all(cells.get(qdc.cell_id(name, h, s)) for h, s in ids):
                t = time.time()
                metrics = qdc.run_scan(comp, name, wd, resume=FLAGS.resume, progress=FLAGS.progress,
                                       stop_after=_STOP_AFTER.value)
                if metrics is None:
                    print(f"Stopped {name} after {_STOP_AFTER.value} generations (--stop_after).")
                    return
                for cell, row in qdc.scan_rows(comp, name, metrics, time.time() - t):
                    cells.record(cell, row)
            for r in cells.rows():
                if r["algorithm"] == name:
                    print(f"{name} [{r['label']}] seed {r['seed']}: coverage {r['coverage']:.3f}, "
                          f"reward areas {r['reward_areas']}, best reward {r['best_reward']:.3f}",
                          flush=True)
        summary = qdc.summarise(comp, cells.rows())
        wd.write_json("summary.json", summary)
        png = plot_comparison(wd.path, comp, cells.rows(), wd.file("curves.png"))
    print(f"Wrote {wd.file('summary.json')} and {png}")


if __name__ == "__main__":
    cli.run(main)
