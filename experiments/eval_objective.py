"""Evaluate discovered objectives: train fresh PPO-style agents with shipped TA-LPO, LPO and PPO.

    python experiments/eval_objective.py            # the README's main job (config `front`)
    python experiments/eval_objective.py --config=experiments/configs/meta_eval.py:cartpole_cpu

For each environment x lifetime (multiples of the meta-training lifetime), every objective x seed is
trained in one vmapped call per drift form (`lfx.meta.evaluate`): LPO is embedded in TA-LPO's
feature space (zero progress weights) and PPO is the PPO-initialised drift with a zero output layer,
so one compiled function serves all three; a drift that cannot be embedded (e.g. TA-LPO with
lifetime features, a meta_train.py workdir) gets its own call. A held-out environment may train with
its own PPO settings (`config.env_overrides`, e.g. brax: normalisation, more envs, another lr).
Writes `<workdir>/results.jsonl` (final return per objective/env/lifetime/seed), `summary.json`,
`summary.md`, `curves_<env>.png` (return curves) and `drift.png` (the drift over (r, A) at several
training fractions).
"""

from __future__ import annotations

import dataclasses
import importlib.util
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs"))
from meta_eval import OVERRIDABLE  # noqa: E402

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

def cell_settings(c, env_name: str, mult: float) -> tuple[ppo.PPOConfig, ppo.HParams]:
    """PPO settings of one (env, lifetime multiplier) cell: the config's, then `env_overrides[env]`.

    Raises:
      ValueError: for an override key that is not in meta_eval.OVERRIDABLE, or an invalid result.
    """
    over = c.env_overrides.get(env_name, None) if "env_overrides" in c else None
    over = over.to_dict() if over is not None else {}
    unknown = sorted(set(over) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"env_overrides[{env_name!r}] has unknown keys {unknown}; allowed: "
                         f"{list(OVERRIDABLE)}.")
    base = {k: c.get(k) for k in ("base_timesteps", "num_envs", "num_steps", "update_epochs",
                                  "num_minibatches", "hidden_sizes", "activation")}
    s = {**base, **{k: v for k, v in over.items() if k != "hparams"}}
    fields = {f.name for f in dataclasses.fields(ppo.PPOConfig)}
    kw = {k: v for k, v in s.items() if k in fields}
    kw["hidden_sizes"] = tuple(kw["hidden_sizes"])
    kw["env_kwargs"] = tuple(sorted(dict(kw.get("env_kwargs", {})).items()))
    cfg = ppo.PPOConfig(env_name=env_name, total_timesteps=int(s["base_timesteps"] * mult), **kw)
    cfg.validate()
    bad = sorted(set(over.get("hparams", {})) - {f.name for f in dataclasses.fields(ppo.HParams)})
    if bad:
        raise ValueError(f"env_overrides[{env_name!r}].hparams has unknown fields {bad}.")
    hparams = ppo.HParams(**over.get("hparams", {}))
    hparams.validate()
    return cfg, hparams


def evaluate(c, env_name, mult, pop, key, *, desc="", progress=True):
    """Final returns [O, S] and curves [O, S, N] of every objective x seed on one (env, lifetime) cell."""
    cfg, hparams = cell_settings(c, env_name, mult)
    if progress and desc:
        print(desc, flush=True)
    return evaluate_lib.train_objectives(
        cfg, pop, key, c.num_seeds, hparams=hparams, window_fraction=c.window_fraction,
        progress_chunks=c.progress_chunks, progress=progress)


def check_envs(envs) -> None:
    """Fails before any training when an environment's optional dependency is missing."""
    for env in envs:
        if env.startswith("brax/") and importlib.util.find_spec("brax") is None:
            raise ImportError(f"{env} needs brax, which is not installed: pip install -e '.[brax]' "
                              "(or drop it from --config.heldout_envs).")


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
    check_envs({e for e, _ in runs})
    for env, mult in runs:  # reject a bad override before anything compiles
        cell_settings(c, env, mult)
    rows, curves_by = [], {}
    t0 = time.time()
    todo = [int(x) for x in _CELLS.value.split(",")] if _CELLS.value else list(range(len(runs)))
    for i, (env, mult) in enumerate(runs):
        if _AGGREGATE.value or i not in todo:
            part = os.path.join(wd, "results_partial.jsonl")
            got = []
            if os.path.exists(part):
                with open(part) as f:
                    got = [json.loads(x) for x in f]
            got = [r for r in got if r["env"] == env and r["lifetime_x"] == mult]
            if not got:
                continue
            rows += got[-len(names) * c.num_seeds:]
            if os.path.exists(os.path.join(wd, f"curves_{i}.npy")):
                curves_by[(env, mult)] = np.load(os.path.join(wd, f"curves_{i}.npy"))
            continue
        t = time.time()
        steps = cell_settings(c, env, mult)[0].total_timesteps
        final, curves = evaluate(
            c, env, mult, pop, jax.random.key(c.seed + i), progress=_PROGRESS.value,
            desc=f"[{i + 1}/{len(runs)}] {env}, lifetime x{mult:g} = {steps:,} steps, "
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
            f.writelines(json.dumps(r) + "\n" for r in rows[-len(names) * c.num_seeds:])
    with open(os.path.join(wd, "results.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
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
    curve_files = ", ".join(f"{wd}/curves_{e.replace('/', '_')}.png" for e in dict.fromkeys(e for e, _ in runs))
    print(f"Wrote {wd}/summary.md, {curve_files} and {wd}/drift.png")


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
            steps = np.arange(1, cur.shape[-1] + 1) * cell_settings(c, env, m)[0].batch_size
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
        fig.savefig(os.path.join(workdir, f"curves_{env.replace('/', '_')}.png"), dpi=110)
        plt.close(fig)
    learned = [n for n in names if n != "ppo"]
    if not learned:
        return
    fracs = (0.0, 0.25, 0.5, 0.75, 1.0)
    # Lifetime-feature drifts are drawn at the x1 lifetime of the first evaluated cell (N updates).
    n_x1 = cell_settings(c, runs[0][0], 1.0)[0].num_updates if runs else 100
    fig, axes = plt.subplots(len(learned), len(fracs), figsize=(2.6 * len(fracs), 2.4 * len(learned)),
                             squeeze=False)
    for row, n in enumerate(learned):
        p, cfg = originals[n]
        for col, frac in enumerate(fracs):
            r, a, d = analysis.drift_grid(p, cfg, progress=frac, lifetime=n_x1)
            im = axes[row][col].imshow(d, origin="lower", aspect="auto",
                                       extent=[r[0], r[-1], a[0], a[-1]], cmap="viridis")
            label = os.path.basename(n.rstrip("/")) if os.path.isdir(n) else n
            axes[row][col].set_title(f"{label}\nn/N={frac}", fontsize=8)
            axes[row][col].set_xlabel("r")
            fig.colorbar(im, ax=axes[row][col])
        axes[row][0].set_ylabel("A")
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, "drift.png"), dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    app.run(main)
