"""Per-seed tables of OC-GFN adaptation runs (experiments/gfn_ocgfn.py, adapt mode), paired by seed.

Each run is a workdir (its `summary.json` and `curves.npz`), optionally `workdir:seed` to take one
adaptation seed of a multi-seed run (default: every seed in it). One row per (workdir, seed):
pre-training seed and success rate, exact TV of the direct conversion, iterations to all modes
(1-based; "never" when a run did not find them all) for the adapted sampler, TB from scratch and the
exact direct conversion, exact TV at the last evaluation and at `tv_at`, and reward evaluations of
the adapted run. `table` adds mean ± std (population std, as in summary.json) over rows, the paired
difference scratch - adapted in iterations to all modes, how many rows the adapted sampler wins
(ties count one half) with the exact two-sided sign test (ties dropped), and at how many exact-TV
evaluations from index 100 on the mean adapted TV is lower. Rows where either sampler never found
every mode are left out of the paired difference and counted apart.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np


def _iters(index):
    """summary.json stores the 0-based first iteration with all modes (-1: never); 1-based or None."""
    return None if index < 0 else index + 1


def _pretrain_seed(summary):
    """summary.json's config: flat (runs before the harness) or {"run": {...}} (after)."""
    c = summary["config"]
    return int(c["run"]["pretrain_seed"] if "run" in c else c["pretrain_seed"])


def load_rows(specs, tv_at=400):
    """Rows (dicts) for `specs`, a list of 'workdir' or 'workdir:seed' strings; plus the curves.

    Returns:
      rows: one dict per (workdir, seed).
      curves: {"adapted", "scratch": [R, T] modes found per iteration; "tv_adapted", "tv_scratch": [R, T]
        exact TV, NaN between evaluations}, rows in order.
    """
    rows, curves = [], {"adapted": [], "scratch": [], "tv_adapted": [], "tv_scratch": []}
    for spec in specs:
        path, _, want = spec.partition(":")
        with open(os.path.join(path, "summary.json")) as f:
            s = json.load(f)
        cur = np.load(os.path.join(path, "curves.npz"))
        seeds = list(s["seeds"])
        if want and int(want) not in seeds:
            raise ValueError(f"{path} has adaptation seeds {seeds}, not {want}: change the ':seed' suffix.")
        for seed in [int(want)] if want else seeds:
            i = seeds.index(seed)
            rows.append({
                "run": path, "env": s.get("env", "?"), "seed": seed, "pretrain_seed": _pretrain_seed(s),
                "pretrain_success": s["pretrain_success"], "direct_tv": s.get("direct_conversion_tv"),
                "adapted_iters": _iters(s["adapted"]["iters_to_all_modes"][i]),
                "scratch_iters": _iters(s["scratch"]["iters_to_all_modes"][i]),
                "direct_iters": _iters(s["direct"]["iters_to_all_modes"][i]) if "direct" in s else None,
                "adapted_tv": s["adapted"]["final_tv"][i], "scratch_tv": s["scratch"]["final_tv"][i],
                "adapted_queries": float(cur["adapted_reward_queries"][i, -1]),
                "tv_at": tv_at, "adapted_tv_at": float(cur["tv_adapted"][i, tv_at]),
                "scratch_tv_at": float(cur["tv_scratch"][i, tv_at]),
            })
            for k, v in curves.items():
                v.append(cur[k][i])
    return rows, {k: np.stack(v) for k, v in curves.items()}


def paired(rows):
    """Paired comparison of iterations to all modes: scratch - adapted (> 0: adapted faster)."""
    both = [r for r in rows if r["adapted_iters"] is not None and r["scratch_iters"] is not None]
    d = np.array([r["scratch_iters"] - r["adapted_iters"] for r in both], float)
    wins = float(np.sum(d > 0) + 0.5 * np.sum(d == 0))
    n, k = int(np.sum(d != 0)), int(np.sum(d > 0))
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1)) / 2**n  # two-sided sign test, ties dropped
    return {"diff_mean": float(d.mean()) if len(d) else None, "diff_std": float(d.std()) if len(d) else None,
            "adapted_wins": wins, "compared": len(both), "left_out": len(rows) - len(both),
            "sign_test_p": min(1.0, 2 * tail)}


def tv_lower(curves, start=100):
    """At how many evaluation indices >= `start` the mean exact TV of the adapted sampler is below scratch's."""
    a, b = curves["tv_adapted"], curves["tv_scratch"]
    ok = ~np.isnan(a).any(0) & ~np.isnan(b).any(0) & (np.arange(a.shape[1]) >= start)
    return int(np.sum(a[:, ok].mean(0) < b[:, ok].mean(0))), int(np.sum(ok))


def _ms(values, fmt):
    v = [x for x in values if x is not None]
    if not v:
        return "—"
    return f"{fmt.format(np.mean(v))} ± {fmt.format(np.std(v))}" + ("" if len(v) == len(values) else " (some never)")


def table(rows, curves=None):
    def it(x):
        return "never" if x is None else str(x)

    out = [("| adapt seed | pre-train seed | pre-train success | direct-conv. TV | iters to all modes: adapted "
            "| scratch | direct | exact TV at end: adapted | scratch | exact TV at index "
            f"{rows[0]['tv_at']}: adapted | scratch | reward evals (adapted) |"),
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        dtv = "—" if r["direct_tv"] is None else f"{r['direct_tv']:.3f}"
        out.append(f"| {r['seed']} | {r['pretrain_seed']} | {r['pretrain_success']:.3f} | {dtv} "
                   f"| {it(r['adapted_iters'])} | {it(r['scratch_iters'])} | {it(r['direct_iters'])} "
                   f"| {r['adapted_tv']:.3f} | {r['scratch_tv']:.3f} "
                   f"| {r['adapted_tv_at']:.3f} | {r['scratch_tv_at']:.3f} "
                   f"| {r['adapted_queries'] / 1e6:.2f} M |")
    col = {k: [r[k] for r in rows] for k in rows[0]}
    out.append(f"| mean ± std | | {_ms(col['pretrain_success'], '{:.3f}')} | {_ms(col['direct_tv'], '{:.3f}')} "
               f"| {_ms(col['adapted_iters'], '{:.0f}')} | {_ms(col['scratch_iters'], '{:.0f}')} "
               f"| {_ms(col['direct_iters'], '{:.0f}')} | {_ms(col['adapted_tv'], '{:.3f}')} "
               f"| {_ms(col['scratch_tv'], '{:.3f}')} | {_ms(col['adapted_tv_at'], '{:.3f}')} "
               f"| {_ms(col['scratch_tv_at'], '{:.3f}')} | {np.mean(col['adapted_queries']) / 1e6:.2f} M |")
    p = paired(rows)
    if p["compared"]:
        out.append(f"\nscratch - adapted, iterations to all modes: {p['diff_mean']:.0f} ± {p['diff_std']:.0f} "
                   f"(paired, {p['compared']} rows); adapted faster in {p['adapted_wins']:g} of {p['compared']} "
                   f"(two-sided sign test p = {p['sign_test_p']:.3f})"
                   + (f"; {p['left_out']} rows left out (a sampler never found every mode)" if p["left_out"] else ""))
    if curves is not None:
        lo, n = tv_lower(curves)
        out.append(f"mean exact TV lower for the adapted sampler at {lo} of {n} evaluations from index 100 on")
    return "\n".join(out)


def plot(curves, rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    it = np.arange(1, curves["adapted"].shape[1] + 1)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, c, label in (("adapted", "C0", "OC-GFN adapted"), ("scratch", "C3", "TB from scratch")):
        for j, x in enumerate(curves[name]):
            ax.plot(it, x, c=c, alpha=0.35, lw=0.8, label=label if j == 0 else None)
        ax.plot(it, curves[name].mean(0), c=c, lw=2)
    ax.set_xlabel("iteration")
    ax.set_ylabel("modes found")
    pts = sorted({r["pretrain_seed"] for r in rows})
    ax.set_title(f"{rows[0]['env']}: {len(rows)} seeds, {len(pts)} pre-trained models (thin: seeds, thick: mean)",
                 fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
