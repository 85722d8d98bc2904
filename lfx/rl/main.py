"""The one training-script body of every `lfx.rl` recipe (PPO, SAC, DQN, PQN, ...).

`experiments/<algo>.py` defines its flags and calls `main_for(module, name)`; the module supplies

* `Config` — the static config dataclass (`env_name`, `num_updates`, `steps_per_update`,
  `validate()`),
* `HParams` — the traced hyperparameters (`validate()`),
* `make_train(config)` — the recipe (`init`, `run`, `num_updates`, the `lfx.experiment` protocol),

and every recipe reports "train/episode_return" per update (optionally "eval/episode_return" with
"eval/fresh"). The body: config -> dataclasses (validated before compiling), the `--sweep` grid,
seeds x settings vmapped in one call, `run_chunked` (progress, checkpoints, exact resume, NaN stop),
`metrics.jsonl|csv`, `summary.json` (final training return and, when the run evaluates, the final
greedy return per setting) and `learning_curve.png`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import jax
import numpy as np
from absl import logging

from lfx import parallel
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
from lfx.utils.plotting import plot_learning_curves


def build(module: ModuleType, config, sweep: str):
    """Config -> (static config, RunConfig, HParams batch [H], setting dicts, labels); validates all."""
    static, run, base = from_configdict(config, module.Config, RunConfig, hparams=module.HParams)
    static.validate()
    run.validate()
    every = getattr(static, "eval_every", 0)
    if every > 0 and run.chunk_size % every:
        raise ValueError(
            f"config.eval_every={every} does not divide config.chunk_size={run.chunk_size}: each "
            f"chunk evaluates after every eval_every-th of its own updates, so the run would "
            f"evaluate off its grid (or never); set chunk_size to a multiple of {every}."
        )
    settings, dicts, labels = cli.sweep_settings(base, sweep)
    for hp in settings:
        check_finite_hparams(hp)
        hp.validate()
    return static, run, stack_hparams(settings), dicts, labels


def _final(values: np.ndarray, fresh: np.ndarray | None) -> np.ndarray:
    """[S, T] -> [S]: the last value (of an update that evaluated, when `fresh` is given)."""
    if fresh is None:
        return values[:, -1]
    idx = np.where(fresh[0] > 0)[0]
    return values[:, idx[-1]] if idx.size else np.full(values.shape[0], np.nan)


def main_for(module: ModuleType, name: str, flags_obj, *,
             on_chunk: Callable[[dict, int], None] | None = None, args: tuple = (),
             curve_metric: str = "train/episode_return",
             score: Callable[[np.ndarray], np.ndarray] | None = None,
             info: dict | None = None, steps_name: str = "env_steps") -> None:
    """Runs `module`'s recipe as the script's main job (see the module doc).

    `args` are the recipe's extra run arguments (passed unbatched to `init` and `run`, e.g. an
    offline dataset); `curve_metric` is the per-update return reported, plotted and summarised
    ("eval/episode_return" for recipes that only evaluate: then its evaluated updates only);
    `score(returns) -> scores` adds a normalised score of the final return to the summary (e.g.
    D4RL's); `info` is written into summary.json (e.g. the dataset's metadata); `steps_name` names
    what `steps_per_update` counts (summary.json's key for the run's length).
    """
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    config = cli.get_config()
    static, run_cfg, hparams, settings, labels = build(module, config, flags_obj.sweep)
    recipe = module.make_train(static)
    num_updates, per_update = recipe.num_updates, static.steps_per_update
    run_config = {name.lower(): static.__dict__, "run": run_cfg.__dict__, "hparams": settings}
    wd = cli.open_workdir(f"{name.lower()}_{static.env_name}", run_config)
    writer = MetricWriter(wd.path, batch_names=("setting", "seed"), steps_per_update=per_update,
                          tensorboard=flags_obj.tensorboard, wandb=flags_obj.wandb,
                          primary=wd.primary)
    keys = jax.random.split(jax.random.key(run_cfg.seed), run_cfg.num_seeds)
    shard = (lambda s: parallel.shard_population(s, parallel.make_mesh(), axis=1)) \
        if flags_obj.shard else None
    init, run = recipe_functions(recipe, keys, hparams, *args, shard=shard)
    print(
        f"{name} on {static.env_name}: {len(settings)} setting(s) x {run_cfg.num_seeds} seeds, "
        f"{num_updates} updates x {per_update} steps = {num_updates * per_update:,} steps per run, "
        f"on {jax.device_count()} {jax.devices()[0].platform} device(s)."
    )
    with wd:
        try:
            _, metrics = run_chunked(
                init, run, total_updates=num_updates, chunk_size=run_cfg.chunk_size, workdir=wd,
                checkpoint_every=run_cfg.checkpoint_every, keep_checkpoints=run_cfg.keep_checkpoints,
                writer=writer, progress=flags_obj.progress, on_chunk=on_chunk, place=shard,
                progress_metric=curve_metric,
            )
        finally:
            writer.close()
        returns = metrics[curve_metric]  # [H, S, T]
        evals = metrics.get("eval/episode_return") if curve_metric != "eval/episode_return" else None
        steps = np.arange(1, num_updates + 1) * per_update
        shown = np.arange(num_updates)  # the updates a curve shows (evaluated ones, for an eval metric)
        if curve_metric == "eval/episode_return":
            shown = np.flatnonzero(metrics["eval/fresh"][0, 0] > 0)
        summary, curves = [], {}
        for h, (s, label) in enumerate(zip(settings, labels)):
            final = returns[h, :, shown[-1]] if shown.size else np.full(returns.shape[1], np.nan)
            what = "greedy evaluation return" if curve_metric == "eval/episode_return" else "episodic return"
            row = {"setting": s, "label": label,
                   "final_return_mean": float(final.mean()), "final_return_std": float(final.std()),
                   "final_return_median": float(np.median(final)), "final_returns": final.tolist()}
            line = (f"[{label}] final {what} over {run_cfg.num_seeds} seeds: "
                    f"mean {final.mean():.1f} +- {final.std():.1f}, median {np.median(final):.1f}")
            if evals is not None:
                greedy = _final(evals[h], metrics["eval/fresh"][h])
                row.update(final_eval_return_mean=float(greedy.mean()),
                           final_eval_return_std=float(greedy.std()),
                           final_eval_returns=greedy.tolist())
                line += f"; greedy evaluation {greedy.mean():.1f} +- {greedy.std():.1f}"
            if score is not None:
                scores = np.asarray(score(final))
                row.update(final_score_mean=float(scores.mean()), final_score_std=float(scores.std()),
                           final_scores=scores.tolist())
                line += f"; normalised score {scores.mean():.1f} +- {scores.std():.1f}"
            summary.append(row)
            curves[label if len(settings) > 1 else name] = (steps[shown], returns[h][:, shown])
            print(line)
        wd.write_json("summary.json", {"env": static.env_name, steps_name: int(steps[-1]), "runs": summary,
                                       **(info or {})})
        if not wd.primary:  # of several processes, process 0 writes
            return
        png = plot_learning_curves(curves, wd.file("learning_curve.png"),
                                   title=f"{name} on {static.env_name} (mean +- std over seeds)")
    print(f"Wrote {png} and {writer.jsonl_path}")
