"""Tune a language model on preference pairs (DPO and its family), seeds and a beta grid in one call.

    python experiments/pref_task.py --workdir=datasets/pref/lexicon      # once: task (a)
    python experiments/pref.py                                          # DPO, 5 seeds
    python experiments/pref.py --config.loss_type=ipo --sweep="beta=0.1,0.5,1"
    python experiments/pref.py --config.eval_reward=intensity           # a held-out reward
    python experiments/pref.py --workdir=runs/pref_dpo --resume         # continue a killed run

Trains `lfx.pref.recipe` through the shared harness (progress bar, checkpoints, exact resume, NaN
stop, a workdir that is never overwritten) and writes `metrics.jsonl|csv`, `summary.json` (per
setting: the final evaluation's reward, KL and win rate against the reference, mean and std over
seeds, with the task's metadata), `learning_curve.png` (reward over updates) and `frontier.png`
(reward against KL at every evaluation, one colour per setting: the DPO paper's Fig. 2 axes).
"""

from __future__ import annotations

import dataclasses
import sys

import jax
import numpy as np
from absl import logging

from lfx.experiment import (
    MetricWriter,
    RunConfig,
    check_finite_hparams,
    cli,
    from_configdict,
    recipe_functions,
    run_chunked,
    stack_hparams,
)
from lfx.pref import lexicon, recipe
from lfx.pref.data import TaskSpec
from lfx.utils.plotting import plot_frontier, plot_learning_curves

FLAGS = cli.define_flags("pref.py:dpo", sweep=True)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    config = cli.get_config()
    static, spec, run_cfg, base = from_configdict(config, recipe.PrefConfig, TaskSpec, RunConfig,
                                                  hparams=recipe.HParams)
    run_cfg.validate()
    settings, dicts, labels = cli.sweep_settings(base, FLAGS.sweep)
    for hp in settings:
        check_finite_hparams(hp)
        hp.validate()
    reference, model, data, meta = lexicon.load_task(spec.task, reward_name=spec.eval_reward)
    static = dataclasses.replace(static, model=model)
    pref = recipe.make_train(static)
    recipe.check_data(static, data)
    if static.eval_every and run_cfg.chunk_size % static.eval_every:
        raise ValueError(f"config.eval_every={static.eval_every} must divide config.chunk_size="
                         f"{run_cfg.chunk_size} (each chunk evaluates on its own grid).")
    run_config = {"pref": {k: v for k, v in static.__dict__.items() if k != "model"},
                  "task": spec.__dict__, "run": run_cfg.__dict__, "hparams": dicts}
    wd = cli.open_workdir(f"pref_{static.loss_type}", run_config)
    writer = MetricWriter(wd.path, batch_names=("setting", "seed"), steps_per_update=1,
                          tensorboard=FLAGS.tensorboard, wandb=FLAGS.wandb, primary=wd.primary)
    keys = jax.random.split(jax.random.key(run_cfg.seed), run_cfg.num_seeds)
    init, run = recipe_functions(pref, keys, stack_hparams(settings), reference, data)
    print(f"{static.loss_type} on {spec.task} ({data.num_pairs} pairs, eval reward "
          f"{spec.eval_reward!r}): {len(settings)} setting(s) x {run_cfg.num_seeds} seeds, "
          f"{static.num_updates} updates of {static.batch_size} pairs.", flush=True)
    with wd:
        try:
            _, metrics = run_chunked(
                init, run, total_updates=static.num_updates, chunk_size=run_cfg.chunk_size,
                workdir=wd, checkpoint_every=run_cfg.checkpoint_every,
                keep_checkpoints=run_cfg.keep_checkpoints, writer=writer,
                progress=FLAGS.progress, progress_metric="eval/reward")
        finally:
            writer.close()
        summary, curves, frontier = [], {}, {}
        shown = np.flatnonzero(metrics["eval/fresh"][0, 0] > 0) if static.eval_every else []
        for h, (setting, label) in enumerate(zip(dicts, labels)):
            row = {"setting": setting, "label": label}
            line = f"[{label}]"
            if len(shown):
                last = shown[-1]
                for name in recipe.EVAL_METRICS:
                    v = metrics[name][h, :, last]
                    key = name.split("/")[1]
                    row.update({f"final_{key}_mean": float(v.mean()),
                                f"final_{key}_std": float(v.std()), f"final_{key}": v.tolist()})
                    line += f" {key} {v.mean():+.3f} +- {v.std():.3f};"
                curves[label] = (shown + 1, metrics["eval/reward"][h][:, shown])
                frontier[label] = (metrics["eval/kl"][h][:, shown], metrics["eval/reward"][h][:, shown])
            loss = metrics["train/loss"][h, :, -1]
            row["final_train_loss_mean"] = float(loss.mean())
            summary.append(row)
            print(line + f" final training loss {loss.mean():.4f}")
        wd.write_json("summary.json", {"loss_type": static.loss_type, "task": spec.task,
                                       "eval_reward": spec.eval_reward,
                                       "num_updates": static.num_updates, "runs": summary,
                                       "task_metadata": meta,
                                       "command": " ".join(["python", *sys.argv])})
        if wd.primary and curves:
            plot_learning_curves(curves, wd.file("learning_curve.png"), xlabel="updates",
                                 ylabel=f"reward ({spec.eval_reward})",
                                 title=f"{static.loss_type}: reward of pi (mean +- std over seeds)")
            plot_frontier(frontier, wd.file("frontier.png"),
                          title=f"{static.loss_type}: reward vs KL at each evaluation")
    print(f"Wrote {wd.path}")


if __name__ == "__main__":
    cli.run(main)
