"""The one training-script body of every `lfx.pref` recipe on a generated task (DPO family, RLOO).

`experiments/pref*.py` define their flags and call `main_for(module, name, FLAGS)`; the module
supplies `Config` (static, with `model`, `num_updates`, `eval_every`; its `model` is set from the
task's SFT model), `HParams` (traced, `validate()`) and `make_train(config)` (the recipe protocol:
`init` / `run` / `train(key, hparams, reference, data)`, evaluation metrics `recipe.EVAL_METRICS`
or the recipe's own `eval_metrics`); optionally `load_task(spec, config) -> (reference, model,
data, metadata)` and `check_data(config, data)` (`lfx.pref.rlhf`: prompt sets of any task;
otherwise task (a)'s preference pairs are loaded).
The body: config -> dataclasses (validated before compiling), the `--sweep` grid, seeds x settings
vmapped in one call, `run_chunked` (progress, checkpoints, exact resume, NaN stop),
`metrics.jsonl|csv`, with `--save_policy` the trained policies (`policy_<setting>.npz`),
`summary.json` (per setting: the final evaluation's reward, KL, win rate and
entropy, mean and std over seeds, with the task's metadata), `learning_curve.png` (reward over
updates) and `frontier.png` (reward against KL at every evaluation: the DPO paper's Fig. 2 axes).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from types import ModuleType

import jax
import numpy as np
from absl import flags, logging

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
from lfx.lm.io import load_lm, save_lm
from lfx.pref import lexicon, recipe
from lfx.pref.data import TaskSpec
from lfx.utils.plotting import plot_frontier, plot_learning_curves

flags.DEFINE_bool("save_policy", False, "Also write each setting's first-seed policy as "
                  "policy_<setting>.npz|json (`lfx.lm.load_lm`), e.g. RTO's DPO policy.")
flags.DEFINE_integer("stop_after", None, "Testing hook: stop once this many updates are done (a "
                     "killed run); continue with --resume.")


def _save_policies(pref, state, reference, model, task: str, num_settings: int, wd) -> None:
    """policy_<h>.npz|json: setting h's first-seed policy, with the task's tokenizer."""
    _, _, tokenizer, _ = load_lm(os.path.join(task, lexicon.MODEL_FILE))
    for h in range(num_settings):
        params = pref.policy(jax.tree.map(lambda a, h=h: a[h, 0], state), reference)
        save_lm(wd.file(f"policy_{h}.npz"), jax.device_get(params), model, tokenizer,
                task=task, setting=h)


def main_for(module: ModuleType, name: str, flags_obj) -> None:
    """Runs `module`'s recipe on a generated task as the script's main job (see the module doc)."""
    logging.set_verbosity(logging.WARNING)
    config = cli.get_config()
    static, spec, run_cfg, base = from_configdict(config, module.Config, TaskSpec, RunConfig,
                                                  hparams=module.HParams)
    static.check_settings()
    run_cfg.validate()
    settings, dicts, labels = cli.sweep_settings(base, flags_obj.sweep)
    for hp in settings:
        check_finite_hparams(hp)
        hp.validate()
    load = getattr(module, "load_task", None)
    if load is not None:
        reference, model, data, meta = load(spec, static)
    else:
        reference, model, data, meta = lexicon.load_task(spec.task, reward_name=spec.eval_reward)
    static = dataclasses.replace(static, model=model)
    pref = module.make_train(static)
    getattr(module, "check_data", recipe.check_data)(static, data)
    eval_metrics = getattr(pref, "eval_metrics", recipe.EVAL_METRICS)
    if static.eval_every and run_cfg.chunk_size % static.eval_every:
        raise ValueError(f"config.eval_every={static.eval_every} must divide config.chunk_size="
                         f"{run_cfg.chunk_size} (each chunk evaluates on its own grid).")
    run_config = {name: {k: v for k, v in static.__dict__.items() if k != "model"},
                  "task": spec.__dict__, "run": run_cfg.__dict__, "hparams": dicts}
    label = (static.loss_type if getattr(static, "objective", "") == "dpo"
             else getattr(static, "objective", getattr(static, "estimator", name)))
    wd = cli.open_workdir(f"pref_{label}", run_config)
    writer = MetricWriter(wd.path, batch_names=("setting", "seed"), steps_per_update=1,
                          tensorboard=flags_obj.tensorboard, wandb=flags_obj.wandb, primary=wd.primary)
    keys = jax.random.split(jax.random.key(run_cfg.seed), run_cfg.num_seeds)
    init, run = recipe_functions(pref, keys, stack_hparams(settings), reference, data)
    size = (f"{data.num_pairs} pairs" if hasattr(data, "num_pairs")
            else f"{data.train.num_prompts} prompts")
    scored_by = (getattr(static, "true_reward", "") or getattr(static, "reward", "")
                 or spec.eval_reward)
    if scored_by == "lexicon":
        scored_by = spec.eval_reward  # task (a)'s lexicon weights: lexicon, intensity or subset
    print(f"{label} on {spec.task} ({size}, eval reward "
          f"{scored_by!r}): {len(settings)} setting(s) x {run_cfg.num_seeds} seeds, "
          f"{static.num_updates} updates.", flush=True)
    with wd:
        try:
            state, metrics = run_chunked(
                init, run, total_updates=static.num_updates, chunk_size=run_cfg.chunk_size,
                workdir=wd, checkpoint_every=run_cfg.checkpoint_every,
                keep_checkpoints=run_cfg.keep_checkpoints, writer=writer,
                progress=flags_obj.progress, progress_metric="eval/reward",
                stop_after=flags_obj.stop_after)
        finally:
            writer.close()
        if metrics["train/loss"].shape[-1] < static.num_updates:
            print(f"Stopped after {metrics['train/loss'].shape[-1]} updates (--stop_after); "
                  f"continue with --resume.", flush=True)
            return
        summary, curves, frontier = [], {}, {}
        shown = np.flatnonzero(metrics["eval/fresh"][0, 0] > 0) if static.eval_every else []
        for h, (setting, label) in enumerate(zip(dicts, labels)):
            row = {"setting": setting, "label": label}
            line = f"[{label}]"
            if len(shown):
                last = shown[-1]
                for metric in eval_metrics:
                    v = metrics[metric][h, :, last]
                    key = metric.split("/")[1]
                    row.update({f"final_{key}_mean": float(v.mean()),
                                f"final_{key}_std": float(v.std()), f"final_{key}": v.tolist()})
                    line += f" {key} {v.mean():+.3f} +- {v.std():.3f};"
                curves[label] = (shown + 1, metrics["eval/reward"][h][:, shown])
                frontier[label] = (metrics["eval/kl"][h][:, shown], metrics["eval/reward"][h][:, shown])
            loss = metrics["train/loss"][h, :, -1]
            row["final_train_loss_mean"] = float(loss.mean())
            summary.append(row)
            print(line + f" final training loss {loss.mean():.4f}")
        if flags_obj.save_policy and wd.primary:
            _save_policies(pref, state, reference, model, spec.task, len(dicts), wd)
        wd.write_json("summary.json", {"method": name, "loss_type": getattr(static, "loss_type", None),
                                       "task": spec.task,
                                       "eval_reward": spec.eval_reward,
                                       "num_updates": static.num_updates, "runs": summary,
                                       "task_metadata": meta,
                                       "command": " ".join(["python", *sys.argv])})
        if wd.primary and curves:
            plot_learning_curves(curves, wd.file("learning_curve.png"), xlabel="updates",
                                 ylabel=f"reward ({scored_by})",
                                 title=f"{label}: reward of pi (mean +- std over seeds)")
            plot_frontier(frontier, wd.file("frontier.png"),
                          title=f"{label}: reward vs KL at each evaluation")
    print(f"Wrote {wd.path}")
