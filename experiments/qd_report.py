"""Markdown tables from experiments/qd_sparse.py summaries (final values, mean ± std over seeds).

    python experiments/qd_report.py runs/qd_sparse/curling runs/qd_sparse/maze runs/qd_sparse/arm

Reads `<workdir>/summary.json` of each folder (read only). `wall_s` is per run; for the scan
algorithms (ns, random, openai_es, map_elites), whose settings x seeds run in one vmapped call, it
is that call's wall time divided by the number of runs.
"""

import json
import os
import sys

COLUMNS = ("coverage", "uniformity", "reward_areas", "best_reward", "wall_s")


def table(workdir: str) -> str:
    with open(os.path.join(workdir, "summary.json")) as f:
        s = json.load(f)
    lines = [f"**{s['env']}**, budget {s['budget']} evaluations, seeds {s['seeds']}", "",
             "| algorithm | " + " | ".join(COLUMNS) + " | reward found (seeds) |",
             "|---" * (len(COLUMNS) + 2) + "|"]
    for algo, r in s["results"].items():
        cells = [f"{r[c]['mean']:.3f} ± {r[c]['std']:.3f}" if c != "wall_s" else f"{r[c]['mean']:.0f}"
                 for c in COLUMNS]
        found = sum(x > 0 for x in r["best_reward"]["per_seed"])
        lines.append(f"| {algo} | " + " | ".join(cells) + f" | {found}/{len(r['best_reward']['per_seed'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print("\n\n".join(table(w) for w in sys.argv[1:]))
