"""Evaluate discovered objectives: train fresh PPO-style agents with shipped TA-LPO, LPO and PPO.

    python experiments/eval_objective.py            # the README's main job (config `front`)
    python experiments/eval_objective.py --config=experiments/configs/meta_eval.py:cartpole_cpu
    python experiments/eval_objective.py --workdir=runs/eval --resume   # finish a killed run
    python experiments/eval_objective.py --workdir=runs/eval --cells=0  # only cell 0 (then --resume
                                                                        # --cells=1, ... or all)

For each environment x lifetime (multiples of the meta-training lifetime), every objective x seed is
trained in one vmapped call per drift form (`lfx.meta.evaluate`): LPO is embedded in TA-LPO's
feature space (zero progress weights) and PPO is the PPO-initialised drift with a zero output layer,
so one compiled function serves all three; a drift that cannot be embedded (e.g. TA-LPO with
lifetime features, a meta_train.py workdir) gets its own call. A held-out environment may train with
its own PPO settings (`config.env_overrides_kwargs`, e.g. brax: normalisation, more envs, another lr).

Each (env, lifetime) cell is one record of `<workdir>/results.jsonl` (final returns and curves per
objective and seed, `lfx.experiment.CellLog`): a killed run continued with `--resume` skips the
finished cells. Then `summary.json`, `summary.md` (mean ± s.e. per cell, and IQM with 95% bootstrap
intervals of the PPO-normalised score over cells and seeds, `lfx.experiment.stats`),
`aggregate.png`, `curves_<env>.png` (return curves) and `drift.png` (the drift over (r, A) at
several training fractions).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

import jax
import numpy as np
from absl import flags, logging

from lfx.experiment import CellLog, cli, from_configdict
from lfx.meta import analysis
from lfx.meta import evaluate as evaluate_lib

FLAGS = cli.define_flags("meta_eval.py:front")
flags.DEFINE_string("cells", "", "Comma-separated indices of the (env, lifetime) cells to run "
                    "(default: all); the others are only summarised if already recorded.")


def cell_id(env: str, mult: float) -> str:
    return f"{env}_x{mult:g}"


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    (config,) = from_configdict(cli.get_config(), evaluate_lib.EvalConfig)
    runs = evaluate_lib.validate(config)  # everything is checked before anything compiles
    todo = evaluate_lib.parse_cells(FLAGS.cells, len(runs))
    pop, originals = evaluate_lib.stack_objectives(config.objectives)
    names = list(config.objectives)
    wd = cli.open_workdir("eval_objective", dataclasses.asdict(config),
                          has_checkpoints=CellLog.has_cells)
    t0 = time.time()
    with wd:
        log = CellLog(wd)

        def train_cell(i, env, mult):
            def fn():
                cfg, hparams = evaluate_lib.cell_settings(config, env, mult)
                if FLAGS.progress:
                    print(f"[{i + 1}/{len(runs)}] {env}, lifetime x{mult:g} = "
                          f"{cfg.total_timesteps:,} steps, {len(names)} objectives x "
                          f"{config.num_seeds} seeds", flush=True)
                t = time.time()
                final, curves = evaluate_lib.train_objectives(
                    cfg, pop, jax.random.key(config.seed + i), config.num_seeds, hparams=hparams,
                    window_fraction=config.window_fraction, progress_chunks=config.progress_chunks,
                    progress=FLAGS.progress)
                print(f"{env} x{mult}: " + ", ".join(f"{n}={final[o].mean():.1f}"
                                                     for o, n in enumerate(names)),
                      f"({time.time() - t:.0f}s)", flush=True)
                return {"env": env, "lifetime_x": mult, "batch_size": cfg.batch_size,
                        "final": {n: final[o] for o, n in enumerate(names)},
                        "curves": {n: curves[o] for o, n in enumerate(names)}}
            return fn

        log.run([(cell_id(env, mult), train_cell(i, env, mult))
                 for i, (env, mult) in enumerate(runs) if i in todo],
                progress=FLAGS.progress, desc="cells")
        recorded = {r["cell"]: r for r in log.rows()}
        rows = [recorded[cell_id(e, m)] for e, m in runs if cell_id(e, m) in recorded]
        lines = summarise(wd, names, rows, t0)
        print("\n".join(lines))
        plot(config, names, rows, originals, wd.path)
    curve_files = ", ".join(wd.file(f"curves_{e.replace('/', '_')}.png")
                            for e in dict.fromkeys(r["env"] for r in rows))
    print(f"Wrote {wd.file('summary.md')}, {curve_files} and {wd.file('drift.png')}")


def summarise(wd, names, rows, t0) -> list[str]:
    """summary.json / summary.md: mean ± s.e. per cell; the PPO-relative score, IQM over cells."""
    from lfx.experiment import stats  # noqa: PLC0415

    summary = {}
    lines = ["| env | lifetime | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    norm = {n: [] for n in names}
    scores = {n: [] for n in names}  # [cells][seeds] of 1 + (R - R_PPO) / |R_PPO|
    for r in rows:
        cell = {}
        for n in names:
            v = np.asarray(r["final"][n], np.float64)
            cell[n] = (float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0)
        ppo_mean = cell["ppo"][0] if "ppo" in cell else 1.0
        for n in names:  # signed relative difference to PPO: > 0 is better, whatever the sign of returns
            norm[n].append((cell[n][0] - ppo_mean) / abs(ppo_mean) if ppo_mean else np.nan)
            scores[n].append(1.0 + (np.asarray(r["final"][n]) - ppo_mean) / abs(ppo_mean or 1.0))
        summary[r["cell"]] = cell
        lines.append(f"| {r['env']} | x{r['lifetime_x']:g} | " +
                     " | ".join(f"{m:.1f} ± {s:.1f}" for m, s in cell.values()) + " |")
    lines.append("| **mean (R - R_PPO) / abs(R_PPO)** | all | " +
                 " | ".join(f"{np.mean(norm[n]):.3f}" for n in names) + " |")
    summary["mean_relative_improvement_over_ppo"] = {n: float(np.mean(norm[n])) for n in names}
    if "ppo" in names and rows:
        agg = stats.aggregate({n: np.stack(scores[n], -1) for n in names}, metrics=("iqm", "mean"))
        summary["aggregate_ppo_normalised"] = agg
        lines.append("| **IQM of R / R_PPO [95% CI]** | all | " + " | ".join(
            "{:.3f} [{:.3f}, {:.3f}]".format(*agg[n]["iqm"]) for n in names) + " |")
        stats.plot_aggregate(agg, wd.file("aggregate.png"), xlabel="return / PPO's (1 = PPO)",
                             title="cells x seeds")
    summary["wall_time_s"] = time.time() - t0
    summary["command"] = "python " + " ".join(sys.argv)
    wd.write_json("summary.json", summary)
    with open(wd.file("summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return lines


def plot(config, names, rows, originals, workdir):
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    envs = sorted({r["env"] for r in rows}, key=lambda e: e != config.meta_env)
    for env in envs:
        cells = sorted((r for r in rows if r["env"] == env), key=lambda r: r["lifetime_x"])
        fig, axes = plt.subplots(1, len(cells), figsize=(3.2 * len(cells), 3), squeeze=False)
        for ax, r in zip(axes[0], cells, strict=True):
            for n in names:
                cur = np.asarray(r["curves"][n])  # [S, N]
                steps = np.arange(1, cur.shape[-1] + 1) * r["batch_size"]
                mu, se = cur.mean(0), cur.std(0) / np.sqrt(cur.shape[0])
                ax.plot(steps, mu, label=n)
                ax.fill_between(steps, mu - se, mu + se, alpha=0.2)
            ax.set_title(f"{env} x{r['lifetime_x']:g}")
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
    first = rows[0]["env"] if rows else config.meta_env
    n_x1 = evaluate_lib.cell_settings(config, first, 1.0)[0].num_updates
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
    cli.run(main)
