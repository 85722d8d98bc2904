"""Markdown tables from experiments/qd_sparse.py summaries (final values, mean ± std over seeds).

    python experiments/qd_report.py runs/qd_sparse/curling runs/qd_sparse/maze runs/qd_sparse/arm
    # one table from several summaries, rows labelled (e.g. a rerun beside the documented rows):
    python experiments/qd_report.py --merge runs/qd_i19/arm "docs/results/qd_arm_summary.json:before issue 19"

Each argument is a workdir (its `summary.json` is read) or a summary file, optionally followed by
`:<label>`, appended to its algorithms' names in a merged table. Read only. `wall_s` is per run; for
the scan algorithms (ns, random, openai_es, map_elites), whose settings x seeds run in one vmapped
call, it is that call's wall time divided by the number of runs.
"""

import json
import os
import sys

COLUMNS = ("coverage", "uniformity", "reward_areas", "best_reward", "wall_s")


def load(spec: str) -> tuple[dict, str]:
    path, label = spec, ""
    if not os.path.exists(path) and ":" in spec:
        path, label = spec.rsplit(":", 1)
    if os.path.isdir(path):
        path = os.path.join(path, "summary.json")
    with open(path) as f:
        return json.load(f), label


def rows(s: dict, label: str = "") -> list[str]:
    out = []
    for algo, r in s["results"].items():
        cells = [f"{r[c]['mean']:.3f} ± {r[c]['std']:.3f}" if c != "wall_s" else f"{r[c]['mean']:.0f}"
                 for c in COLUMNS]
        found = sum(x > 0 for x in r["best_reward"]["per_seed"])
        name = f"{algo} ({label})" if label else algo
        out.append(f"| {name} | " + " | ".join(cells) + f" | {found}/{len(r['best_reward']['per_seed'])} |")
    return out


def header(s: dict) -> list[str]:
    return [f"**{s['env']}**, budget {s['budget']} evaluations, seeds {s['seeds']}", "",
            "| algorithm | " + " | ".join(COLUMNS) + " | reward found (seeds) |",
            "|---" * (len(COLUMNS) + 2) + "|"]


def table(workdir: str) -> str:
    s, label = load(workdir)
    return "\n".join(header(s) + rows(s, label))


def merged(specs: list[str]) -> str:
    loaded = [load(x) for x in specs]
    lines = header(loaded[0][0])
    for s, label in loaded:
        if (s["env"], s["budget"]) != (loaded[0][0]["env"], loaded[0][0]["budget"]):
            raise SystemExit(f"--merge: {s['env']} at {s['budget']} is not the first table's task / budget")
        lines += rows(s, label)
    return "\n".join(lines)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--merge":
        print(merged(args[1:]))
    else:
        print("\n\n".join(table(w) for w in args))
