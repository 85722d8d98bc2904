"""A D4RL-style table from experiments/offline.py workdirs: normalised score per algorithm and dataset level.

    python experiments/offline_report.py runs/offline            # every <root>/<algorithm>_<level>/summary.json
    python experiments/offline_report.py runs/offline --json=docs/results/offline_pendulum.json

Rows are algorithms, columns the dataset levels found; a cell is the final D4RL-normalised score
100 (R - R_random) / (R_expert - R_random), mean +- std over the run's seeds (and the final return
under it with --returns). The dataset's own normalised score heads each column.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

ORDER = ("bc", "td3_bc", "iql", "cql", "sac_n", "edac", "rebrac", "a2pr")
LEVELS = ("random", "medium", "medium_replay", "medium_expert", "expert")


def collect(root: str) -> dict[tuple[str, str], dict]:
    """{(algorithm, level): summary.json} for every `<root>/<algorithm>_<level>/` with a summary."""
    found = {}
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, "summary.json")
        if not os.path.isfile(path):
            continue
        for level in sorted(LEVELS, key=len, reverse=True):  # medium_expert before medium
            if name.endswith("_" + level):
                found[(name[: -len(level) - 1], level)] = json.load(open(path))
                break
    return found


def dataset_score(path: str) -> float:
    """The normalised score of the dataset's own episodes (the generator's `datasets.json` beside it)."""
    index = os.path.join(os.path.dirname(path), "datasets.json")
    if not os.path.isfile(index):
        return float("nan")
    levels = json.load(open(index))["levels"]
    name = os.path.basename(path)  # <env>-<level>, e.g. pendulum-v1-medium-replay
    level = max((lv for lv in levels if name.endswith("-" + lv)), key=len, default=None)
    return levels[level]["normalized_score_mean"] if level else float("nan")


def table(found: dict, returns: bool = False) -> str:
    algos = [a for a in ORDER if any(k[0] == a for k in found)] + sorted(
        {k[0] for k in found} - set(ORDER))
    levels = [lv for lv in LEVELS if any(k[1] == lv for k in found)]
    data_score = {lv: dataset_score(s["dataset"]) for (_, lv), s in found.items()}
    head = "| algorithm | " + " | ".join(f"{lv} (data {data_score[lv]:.1f})" for lv in levels) + " |"
    lines = [head, "|---|" + "---|" * len(levels)]
    for a in algos:
        cells = []
        for lv in levels:
            s = found.get((a, lv))
            if s is None:
                cells.append("—")
                continue
            r = s["runs"][0]
            cell = f"{r['final_score_mean']:.1f} ± {r['final_score_std']:.1f}"
            if returns:
                cell += f" ({r['final_return_mean']:.0f})"
            cells.append(cell)
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    seeds = {len(s["runs"][0]["final_scores"]) for s in found.values()}
    steps = {s["gradient_steps"] for s in found.values()}
    lines.append("")
    lines.append(f"(seeds per run: {sorted(seeds)}; gradient steps: {sorted(steps)})")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("root")
    p.add_argument("--returns", action="store_true", help="also print the mean final return per cell")
    p.add_argument("--json", default=None, help="write every run's per-seed scores here")
    args = p.parse_args()
    found = collect(args.root)
    if not found:
        raise SystemExit(f"No <algorithm>_<level>/summary.json under {args.root!r}: run experiments/offline.py first.")
    print(table(found, args.returns))
    if args.json:
        out = {f"{a}_{lv}": {"scores": s["runs"][0]["final_scores"], "returns": s["runs"][0]["final_returns"],
                             "score_mean": s["runs"][0]["final_score_mean"],
                             "score_std": float(np.std(s["runs"][0]["final_scores"])),
                             "dataset": s["dataset"], "gradient_steps": s["gradient_steps"],
                             "setting": s["runs"][0]["setting"]}
               for (a, lv), s in sorted(found.items())}
        with open(args.json, "x") as f:  # never overwrite an earlier report
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
