"""Per-seed table for OC-GFN adaptation runs of experiments/gfn_ocgfn.py (adapt mode), paired by seed.

    python experiments/gfn_ocgfn_report.py \
      --runs=runs/gfn_ocgfn_adapt_hypergrid:0,runs/gfn_ocgfn_adapt_hypergrid_pt1,... \
      --plot=docs/results/gfn_ocgfn_adapt_hypergrid_perseed.png --json=docs/results/....json

Each entry of `--runs` is a workdir (its `summary.json` and `curves.npz`), optionally `:seed` to take
one adaptation seed of a multi-seed run (default: every seed in it). One row per (workdir, seed):
pre-training seed and success rate, exact TV of the direct conversion, iterations to all modes
(1-based; "never" when a run did not find them all) for the adapted sampler, TB from scratch and the
exact direct conversion, exact TV at the last evaluation and at `--tv_at`, and reward evaluations
of the adapted run. Below the rows: mean ± std (population std, as in summary.json) over rows, the
paired difference scratch - adapted in iterations to all modes, how many rows the adapted sampler
wins (ties count one half) with the exact two-sided sign test (ties dropped), and at how many exact-TV
evaluations from index 100 on the mean adapted TV is lower. Rows where either sampler never found
every mode are left out of the paired difference and counted apart.
"""

from __future__ import annotations

import json

from absl import app, flags

from lfx.gfn.report import load_rows, paired, plot, table, tv_lower

_RUNS = flags.DEFINE_string("runs", "", "comma-separated adapt workdirs, each optionally ':seed'")
_PLOT = flags.DEFINE_string("plot", "", "write modes-vs-iteration curves of the selected rows here")
_TV_AT = flags.DEFINE_integer("tv_at", 400, "also report the exact TV at this (0-based) evaluation index")
_JSON = flags.DEFINE_string("json", "", "write the rows and the paired comparison here")


def main(_):
    specs = [s for s in _RUNS.value.split(",") if s]
    if not specs:
        raise app.UsageError("--runs is empty: give adapt workdirs, e.g. --runs=runs/a:0,runs/b")
    rows, curves = load_rows(specs, _TV_AT.value)
    print(table(rows, curves))
    if _PLOT.value:
        plot(curves, rows, _PLOT.value)
    if _JSON.value:
        with open(_JSON.value, "w") as f:
            json.dump({"runs": specs, "rows": rows, "paired_scratch_minus_adapted": paired(rows),
                       "mean_tv_lower_from_100": tv_lower(curves)}, f, indent=1)


if __name__ == "__main__":
    app.run(main)
