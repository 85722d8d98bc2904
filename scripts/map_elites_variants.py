"""MAP-Elites variants side by side (lfx.qd.baselines' map_elites, _iso, _cvt, _es), seeds vmapped.

    python scripts/map_elites_variants.py --task curling --budget 10000 --seeds 5 --json_out runs/me_curling.json
    python scripts/map_elites_variants.py --task planar_arm --budget 100000 --seeds 5

Tasks: "curling" is docs/results/qd.md's Curling (`Curling-sparse`, the paper's 3 x 5 tanh MLP,
baselines' population 100, lfx.qd's shared HParams defaults: sigma 0.05, es_sigma 0.3, es_lr 0.05,
line_sigma 0.2), so its "map_elites" row must equal that page's MAP-Elites row; "planar_arm" is
QD's toy arm (`lfx.qd.planar_arm`, 100 joints, genomes clipped to [0, 1], batch 100) with
Vassiliades & Mouret's sigma_iso 0.01 / sigma_line 0.2 for Gaussian and iso-line, QDax's MEES
defaults for ES (es_sigma 0.02, es_lr 0.01) and QD-score offset 1 (fitness -std >= -0.5).
Seeds are `jax.random.key(seed + i)`, i < seeds (the comparison harness's rule). Prints a markdown
table of the final metrics (mean +- std over seeds) and writes every seed's values with --json_out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import jax
import numpy as np

from lfx.qd import baselines
from lfx.qd.map_elites import HParams, make_map_elites
from lfx.qd.planar_arm import make_planar_arm_task
from lfx.qd.recipe import HParams as QDHParams
from lfx.qd.task import make_task

VARIANTS = ("map_elites", "map_elites_iso", "map_elites_cvt", "map_elites_es")
KEYS = ("qd/coverage", "qd/uniformity", "qd/reward_areas", "qd/best_reward", "me/coverage", "me/qd_score",
        "me/max_fitness")


def build(task_name: str, variant: str, budget: int):
    if task_name == "curling":
        task = make_task("Curling-sparse", hidden=(5, 5, 5), image_size=0)
        return baselines.BASELINES[variant](task, baselines.BaselineConfig(population_size=100), budget), QDHParams()
    task = make_planar_arm_task(100)
    rep, em = {"map_elites": ("grid", "gaussian"), "map_elites_iso": ("grid", "iso_line"),
               "map_elites_cvt": ("cvt", "gaussian"), "map_elites_es": ("grid", "es")}[variant]
    cfg = dataclasses.replace(baselines.me_config(baselines.BaselineConfig(population_size=100, clip=(0.0, 1.0)),
                                                  rep, em), qd_offset=1.0)
    return make_map_elites(task, cfg, budget), HParams(sigma=0.01, line_sigma=0.2, es_sigma=0.02, es_lr=0.01)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--task", choices=("curling", "planar_arm"), default="curling")
    p.add_argument("--budget", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--json_out", default=None)
    args = p.parse_args()
    out = {"argv": " ".join(sys.argv), "task": args.task, "budget": args.budget,
           "seeds": list(range(args.seed, args.seed + args.seeds)), "results": {}}
    keys = jax.numpy.stack([jax.random.key(s) for s in out["seeds"]])
    for v in args.variants.split(","):
        if v not in VARIANTS:
            raise ValueError(f"Unknown variant {v!r}; choose from {VARIANTS}.")
        t = time.time()
        recipe, hp = build(args.task, v, args.budget)
        _, m = jax.jit(jax.vmap(recipe.train, in_axes=(0, None)))(keys, hp)
        final = {k: np.asarray(m[k][:, -1], np.float64).tolist() for k in KEYS}
        final["evaluations"] = np.asarray(m["qd/evaluations"][:, -1]).tolist()
        out["results"][v] = {"per_seed": final, "wall_s": time.time() - t, "num_updates": recipe.num_updates}
        print(v, {k: round(float(np.mean(x)), 4) for k, x in final.items()}, f"{time.time() - t:.0f} s", flush=True)
    print(f"\n{args.task}, budget {args.budget}, seeds {out['seeds']}\n")
    print("| variant | " + " | ".join(KEYS) + " | reward found | wall s (all seeds, compile incl.) |")
    print("|---|" + "---|" * (len(KEYS) + 2))
    for v, r in out["results"].items():
        cells = [f"{np.mean(r['per_seed'][k]):.3f} ± {np.std(r['per_seed'][k]):.3f}" for k in KEYS]
        found = sum(x > 0 for x in r["per_seed"]["qd/reward_areas"])
        print(f"| {v} | " + " | ".join(cells) + f" | {found}/{len(out['seeds'])} | {r['wall_s']:.0f} |")
    if args.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
