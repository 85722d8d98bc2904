"""CPL (Hejna et al. 2023, arXiv:2310.13639) and its SFT baseline on oracle-labelled segment pairs of an lfx
offline dataset, several seeds vmapped.

    python experiments/offline_datasets.py --workdir=datasets/pendulum      # once: datasets + SAC oracle
    python experiments/cpl_env.py                                            # SAC-advantage labels
    python experiments/cpl_env.py --config=experiments/configs/cpl_env.py:pendulum_reward
    python experiments/cpl_env.py --workdir=runs/cpl --resume                # continue a killed run

Builds the preference pairs once (`lfx.pref.cpl_segments`: segments of the dataset, labelled by the
SAC oracle's summed advantage or by reward sums), then trains `objective="cpl"` and `"sft"` (BC on
the chosen segments after the same BC pretraining) with the same seeds, each through the shared
harness (`run_chunked`: progress, checkpoints, exact resume) in `<workdir>/<objective>/`
(metrics.jsonl|csv, checkpoints). `<workdir>/summary.json` holds each objective's final greedy
return and D4RL-normalised score per seed (the dataset's reference returns) and the preference
data's statistics; `<workdir>/learning_curve.png` the two curves.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import numpy as np
from absl import logging

from lfx.experiment import MetricWriter, RunConfig, Workdir, cli, from_configdict, recipe_functions, run_chunked
from lfx.experiment.harness import check_finite_hparams, stack_hparams
from lfx.experiment.workdir import default_workdir
from lfx.offline import dataset as ds
from lfx.pref import cpl
from lfx.pref import cpl_segments as cs
from lfx.utils.plotting import plot_learning_curves

FLAGS = cli.define_flags("cpl_env.py:pendulum")


def preferences(config: cs.PreferenceConfig, segment_length: int) -> tuple[cs.Preferences, dict]:
    """The labelled pairs of the config and the dataset's metadata."""
    data, meta = ds.load(config.dataset, generate_hint=(
        "python experiments/offline_datasets.py --workdir=" + config.dataset.rsplit("/", 1)[0]))
    k_oracle = jax.random.split(jax.random.key(config.label_seed))[1]
    if config.oracle == "sac":
        state, networks, normalize = cs.restore_generation_sac(config.dataset)
        oracle = cs.sac_advantages(data, state, networks, normalize, k_oracle, num_samples=config.oracle_samples)
    else:
        oracle = cs.reward_oracle(data)
    prefs = cs.make_preferences(data, oracle, num_pairs=config.num_pairs, segment_length=segment_length,
                                seed=config.label_seed)
    return prefs, meta


def train(static: cpl.CPLConfig, run_cfg: RunConfig, hparams: cpl.HParams, prefs: cs.Preferences,
          path: str, run_config: dict) -> dict[str, np.ndarray]:
    """One objective's seeds through the harness in `path`; returns its metrics [1, S, T]."""
    recipe = cpl.make_train(static)
    keys = jax.random.split(jax.random.key(run_cfg.seed), run_cfg.num_seeds)
    init, run = recipe_functions(recipe, keys, stack_hparams([hparams]), prefs)
    with Workdir.open(path, run_config, resume=FLAGS.resume) as wd:
        writer = MetricWriter(wd.path, batch_names=("setting", "seed"), steps_per_update=static.steps_per_update,
                              tensorboard=FLAGS.tensorboard, wandb=FLAGS.wandb)
        try:
            _, metrics = run_chunked(init, run, total_updates=recipe.num_updates, chunk_size=run_cfg.chunk_size,
                                     workdir=wd, checkpoint_every=run_cfg.checkpoint_every,
                                     keep_checkpoints=run_cfg.keep_checkpoints, writer=writer,
                                     progress=FLAGS.progress, progress_metric="eval/episode_return")
        finally:
            writer.close()
    return metrics


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    config = cli.get_config()
    static, pref_cfg, run_cfg, hparams = from_configdict(config, cpl.CPLConfig, cs.PreferenceConfig, RunConfig,
                                                         hparams=cpl.HParams)
    for part in (static, pref_cfg, run_cfg, hparams):
        part.validate()
    check_finite_hparams(hparams)
    if static.eval_every == 0 or run_cfg.chunk_size % static.eval_every:
        raise ValueError(f"config.eval_every={static.eval_every} must be positive and divide "
                         f"config.chunk_size={run_cfg.chunk_size} (the final return is an evaluation).")
    prefs, meta = preferences(pref_cfg, static.segment_length)
    ref = (meta["ref_min_return"], meta["ref_max_return"])
    root = os.path.abspath(FLAGS.workdir or default_workdir(f"cpl_env_{static.env_name}"))
    print(f"Workdir: {root}; {prefs.num_pairs} pairs of {prefs.segment_length}-step segments of {pref_cfg.dataset} "
          f"({pref_cfg.oracle} oracle), {run_cfg.num_seeds} seeds, {static.total_gradient_steps:,} gradient steps "
          f"({static.bc_steps:,} BC pretraining) per run.", flush=True)
    runs, curves = {}, {}
    for objective in cpl.OBJECTIVES:
        cfg = dataclasses.replace(static, objective=objective)
        run_config = {"cpl": cfg.__dict__, "preferences": pref_cfg.__dict__, "run": run_cfg.__dict__,
                      "hparams": dataclasses.asdict(hparams)}
        metrics = train(cfg, run_cfg, hparams, prefs, os.path.join(root, objective), run_config)
        shown = np.flatnonzero(metrics["eval/fresh"][0, 0] > 0)
        returns = metrics["eval/episode_return"][0]  # [S, T]
        final = returns[:, shown[-1]]
        scores = np.asarray(ds.normalized_score(final, *ref))
        runs[objective] = {"final_returns": final.tolist(), "final_return_mean": float(final.mean()),
                           "final_return_std": float(final.std()), "final_scores": scores.tolist(),
                           "final_score_mean": float(scores.mean()), "final_score_std": float(scores.std()),
                           "final_accuracy_mean": float(metrics["train/accuracy"][0, :, -1].mean())}
        curves[objective] = ((shown + 1) * static.gradient_steps, returns[:, shown])
        print(f"[{objective}] final greedy return over {run_cfg.num_seeds} seeds: {final.mean():.1f} +- "
              f"{final.std():.1f}; normalised score {scores.mean():.1f} +- {scores.std():.1f}; pair accuracy "
              f"{runs[objective]['final_accuracy_mean']:.3f}", flush=True)
    label_gap = np.asarray(prefs.chosen_score - prefs.rejected_score)
    summary = {"env": static.env_name, "dataset": pref_cfg.dataset, "oracle": pref_cfg.oracle,
               "gradient_steps": static.total_gradient_steps, "runs": runs,
               "preferences": {"num_pairs": prefs.num_pairs, "segment_length": prefs.segment_length,
                               "score_gap_median": float(np.median(label_gap))},
               "ref_returns": list(ref)}
    with open(os.path.join(root, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    png = plot_learning_curves(curves, os.path.join(root, "learning_curve.png"), xlabel="gradient steps",
                               ylabel="greedy evaluation return",
                               title=f"CPL vs SFT on {static.env_name} (mean +- std over seeds)")
    print(f"Wrote {os.path.join(root, 'summary.json')} and {png}")


if __name__ == "__main__":
    cli.run(main)
