"""Evaluate discovered objectives: train fresh PPO-style agents with shipped TA-LPO, LPO and PPO.

    python experiments/eval_objective.py            # the README's main job (config `front`)
    python experiments/eval_objective.py --config=experiments/configs/meta_eval.py:cartpole_cpu

For each environment x lifetime (multiples of the meta-training lifetime), every objective x seed is
trained in ONE vmapped call: LPO is embedded in TA-LPO's feature space (zero progress weights) and
PPO is the PPO-initialised drift with a zero output layer, so one compiled function serves all three.
Writes `<workdir>/results.jsonl` (final return per objective/env/lifetime/seed), `summary.json`,
`summary.md`, `curves_<env>.png` (return curves) and `drift.png` (the drift over (r, A) at several
training fractions).
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from lfx.meta import analysis  # noqa: E402
from lfx.meta import evaluate as evaluate_lib  # noqa: E402
from lfx.rl import ppo  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "meta_eval.py:front")
)
_WORKDIR = flags.DEFINE_string(
    "workdir", "", "Output folder (default: runs/eval_objective_<time>); pass one to use --cells/--aggregate.")
_CELLS = flags.DEFINE_string(
    "cells", "", "Comma-separated indices of the (env, lifetime) cells to train (default: all); "
    "each cell appends to results_partial.jsonl and curves_<i>.npy, so cells can run in separate "
    "processes (one per cell, with a timeout) and be aggregated with --aggregate.")
_AGGREGATE = flags.DEFINE_bool("aggregate", False, "Only aggregate saved cells: summary + plots.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar per cell.")

def evaluate(c, env_name, total_timesteps, pop, key, *, desc="", progress=True):
    """Final returns [O, S] and curves [O, S, N] of every objective x seed on one (env, lifetime) cell."""
    cfg = ppo.PPOConfig(
        env_name=env_name, num_envs=c.num_envs, num_steps=c.num_steps,
        total_timesteps=int(total_timesteps), update_epochs=c.update_epochs,
        num_minibatches=c.num_minibatches, hidden_sizes=tuple(c.hidden_sizes), activation=c.activation,
    )
    if progress and desc:
        print(desc, flush=True)
    return evaluate_lib.train_objectives(
        cfg, pop, key, c.num_seeds, window_fraction=c.window_fraction,
        progress_chunks=c.progress_chunks, progress=progress)


def main(argv):
    del argv
    c = _CONFIG.value
    if (_CELLS.value or _AGGREGATE.value) and not _WORKDIR.value:
        raise ValueError("--cells and --aggregate need the --workdir that holds the cells.")
    wd = _WORKDIR.value or os.path.join("runs", f"eval_objective_{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(wd, exist_ok=True)
    pop, originals = evaluate_lib.stack_objectives(c.objectives)
    names = list(c.objectives)
    # The x1 meta-training cell, then held-out environments, then the other lifetimes.
    runs = [(c.meta_env, m) for m in c.lifetime_multipliers]
    runs = runs[:1] + [(e, m) for e in c.heldout_envs for m in c.heldout_multipliers] + runs[1:]
    rows, curves_by = [], {}
    t0 = time.time()
    todo = [int(x) for x in _CELLS.value.split(",")] if _CELLS.value else list(range(len(runs)))
    for i, (env, mult) in enumerate(runs):
        if _AGGREGATE.value or i not in todo:
            part = os.path.join(wd, "results_partial.jsonl")
            got = [json.loads(x) for x in open(part)] if os.path.exists(part) else []
            got = [r for r in got if r["env"] == env and r["lifetime_x"] == mult]
            if not got:
                continue
            rows += got[-len(names) * c.num_seeds:]
            if os.path.exists(os.path.join(wd, f"curves_{i}.npy")):
                curves_by[(env, mult)] = np.load(os.path.join(wd, f"curves_{i}.npy"))
            continue
        t = time.time()
        final, curves = evaluate(
            c, env, c.base_timesteps * mult, pop, jax.random.key(c.seed + i), progress=_PROGRESS.value,
            desc=f"[{i + 1}/{len(runs)}] {env}, lifetime x{mult:g} = {int(c.base_timesteps * mult):,} steps, "
                 f"{len(names)} objectives x {c.num_seeds} seeds")
        curves_by[(env, mult)] = curves
        np.save(os.path.join(wd, f"curves_{i}.npy"), curves)
        for o, name in enumerate(names):
            for s in range(c.num_seeds):
                rows.append({"objective": name, "env": env, "lifetime_x": mult, "seed": s,
                             "final_return": float(final[o, s])})
        print(f"{env} x{mult}: " + ", ".join(f"{n}={final[o].mean():.1f}" for o, n in enumerate(names)),
              f"({time.time() - t:.0f}s)", flush=True)
        with open(os.path.join(wd, "results_partial.jsonl"), "a") as f:
            for r in rows[-len(names) * c.num_seeds:]:
                f.write(json.dumps(r) + "\n")
    with open(os.path.join(wd, "results.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    # Summary: mean +- standard error per cell; return normalised by PPO's mean in the same cell.
    summary = {}
    lines = ["| env | lifetime | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    norm = {n: [] for n in names}
    runs = [(e, m) for e, m in runs if any(r["env"] == e and r["lifetime_x"] == m for r in rows)]
    for env, mult in runs:
        cell = {}
        for n in names:
            v = np.array([r["final_return"] for r in rows if r["objective"] == n and r["env"] == env
                          and r["lifetime_x"] == mult])
            cell[n] = (float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0)
        ppo_mean = cell["ppo"][0] if "ppo" in cell else 1.0
        for n in names:  # signed relative difference to PPO: > 0 is better, whatever the sign of returns
            norm[n].append((cell[n][0] - ppo_mean) / abs(ppo_mean) if ppo_mean else np.nan)
        summary[f"{env}_x{mult:g}"] = cell
        lines.append(f"| {env} | x{mult:g} | " + " | ".join(f"{m:.1f} ± {s:.1f}" for m, s in cell.values()) + " |")
    lines.append("| **mean (R - R_PPO) / abs(R_PPO)** | all | " + " | ".join(f"{np.mean(norm[n]):.3f}" for n in names) + " |")
    summary["mean_relative_improvement_over_ppo"] = {n: float(np.mean(norm[n])) for n in names}
    summary["wall_time_s"] = time.time() - t0
    summary["command"] = "python " + " ".join(sys.argv)
    with open(os.path.join(wd, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    with open(os.path.join(wd, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(c, names, runs, curves_by, originals, wd)
    print(f"Wrote {wd}/summary.md, {wd}/curves_{c.meta_env}.png and {wd}/drift.png")


def plot(c, names, runs, curves_by, originals, workdir):
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    envs = sorted({e for e, _ in runs}, key=lambda e: e != c.meta_env)
    for env in envs:
        mults = sorted(m for e, m in runs if e == env and (e, m) in curves_by)
        if not mults:
            continue
        fig, axes = plt.subplots(1, len(mults), figsize=(3.2 * len(mults), 3), squeeze=False)
        for ax, m in zip(axes[0], mults):
            cur = curves_by[(env, m)]
            steps = np.arange(1, cur.shape[-1] + 1) * c.num_envs * c.num_steps
            for o, n in enumerate(names):
                mu, se = cur[o].mean(0), cur[o].std(0) / np.sqrt(cur.shape[1])
                ax.plot(steps, mu, label=n)
                ax.fill_between(steps, mu - se, mu + se, alpha=0.2)
            ax.set_title(f"{env} x{m:g}")
            ax.set_xlabel("env steps")
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        axes[0][0].set_ylabel("episode return")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(workdir, f"curves_{env}.png"), dpi=110)
        plt.close(fig)
    learned = [n for n in names if n != "ppo"]
    fracs = (0.0, 0.25, 0.5, 0.75, 1.0)
    fig, axes = plt.subplots(len(learned), len(fracs), figsize=(2.6 * len(fracs), 2.4 * len(learned)),
                             squeeze=False)
    for row, n in enumerate(learned):
        p, cfg = originals[n]
        for col, frac in enumerate(fracs):
            r, a, d = analysis.drift_grid(p, cfg, progress=frac)
            im = axes[row][col].imshow(d, origin="lower", aspect="auto",
                                       extent=[r[0], r[-1], a[0], a[-1]], cmap="viridis")
            axes[row][col].set_title(f"{n}\nn/N={frac}", fontsize=8)
            axes[row][col].set_xlabel("r")
            fig.colorbar(im, ax=axes[row][col])
        axes[row][0].set_ylabel("A")
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, "drift.png"), dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    app.run(main)
