"""Compare GFlowNet losses (TB, DB, SubTB, FM, log-partition-variance TB) on hypergrid.

    python experiments/gfn_hypergrid.py --config=experiments/configs/gfn_hypergrid.py:quick
    python experiments/gfn_hypergrid.py --config=experiments/configs/gfn_hypergrid.py:hard \
        --config.num_seeds=5 --workdir=runs/gfn_hypergrid_hard
    python experiments/gfn_hypergrid.py --config.losses=tb --sweep="lr=3e-4,1e-3"
    python experiments/gfn_hypergrid.py --workdir=runs/gfn_hypergrid_hard --resume  # continue a killed run
    python experiments/gfn_hypergrid.py --print_config                # every field, resolved

Every `eval_every` iterations (and at the last) the sampler's EXACT terminal distribution (DP over
the enumerated DAG) is compared with R(x)/Z: total variation (half-sum), JSD, |log Z - log Z_true|
(`eval/*` metrics, NaN at the iterations in between). Each loss is its own harness run in
`<workdir>/<loss>/` (metrics.jsonl|csv: one row per setting, seed and iteration; orbax checkpoints
every `checkpoint_every` iterations, so `--resume` continues exactly where a killed run stopped).
Seed i is `jax.random.key(config.seed + i)`, the seeds of the recorded results; seeds and `--sweep`
settings run as one vmapped call per loss. `<workdir>/summary.json` holds the final values (mean
and std over seeds) and `tv_curves.png` the exact TV curves.
"""

from __future__ import annotations

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags, logging

from lfx import parallel
from lfx.experiment import (
    ConfigError,
    RunConfig,
    WorkdirError,
    check_finite_hparams,
    cli,
    from_configdict,
    stack_hparams,
)
from lfx.gfn import train as gfn_train
from lfx.gfn.experiment import HypergridLosses, as_dict, run_recipe, sub_runs_have_checkpoints

FLAGS = cli.define_flags("gfn_hypergrid.py:quick", sweep=True)
flags.DEFINE_integer("stop_after", None, "Testing hook: stop once this many iterations of the loss "
                     "being trained are done, as if the run had been killed.")
FINAL = ("eval/tv", "eval/jsd", "eval/logz_err", "train/modes_found")


def build(config, sweep: str):
    """Config -> (HypergridLosses, RunConfig, HParams batch [H], setting dicts, labels); checks all."""
    static, run, base = from_configdict(config, HypergridLosses, RunConfig, hparams=gfn_train.GFNHParams)
    static.validate()
    run.validate()
    if run.seed < 0:
        raise ConfigError(f"config.seed must be >= 0 (the first seed), got {run.seed}.")
    settings, dicts, labels = cli.sweep_settings(base, sweep)
    for hp in settings:
        check_finite_hparams(hp)
        try:
            hp.validate()
        except ValueError as err:
            raise ConfigError(str(err)) from None
    return static, run, stack_hparams(settings), dicts, labels


def train_loss(loss, static, run_cfg, hparams, wd):
    """One loss as a harness run in `<workdir>/<loss>/`; metrics [H, S, done] or None if stopped."""
    cfg = static.gfn_config(loss)
    recipe = gfn_train.make_train(cfg)
    keys = jax.vmap(jax.random.key)(run_cfg.seed + jnp.arange(run_cfg.num_seeds))
    shard = (lambda s: parallel.shard_population(s, parallel.make_mesh(), axis=1)) if FLAGS.shard \
        else None
    fingerprint = {"gfn": as_dict(cfg), "run": as_dict(run_cfg), "hparams": as_dict(hparams)}
    _, metrics, complete = run_recipe(
        recipe, keys, hparams, wd.file(loss), fingerprint, run_cfg, resume=FLAGS.resume,
        progress=FLAGS.progress, stop_after=FLAGS.stop_after, progress_metric="eval/tv",
        tensorboard=FLAGS.tensorboard, wandb=FLAGS.wandb, shard=shard,
        steps_per_update=cfg.batch_size)
    return metrics if complete else None


def summarise(loss, metrics, labels, settings):
    """Per setting: final TV, JSD, |dlog Z|, modes (mean, std over seeds) and the per-seed TV."""
    out = []
    for h, (label, s) in enumerate(zip(labels, settings, strict=True)):
        row = {"loss": loss, "setting": s, "label": label}
        for name in FINAL:
            x = np.asarray(metrics[name][h, :, -1], np.float64)
            row[name.split("/")[-1]] = [float(x.mean()), float(x.std())]
        row["tv_per_seed"] = np.asarray(metrics["eval/tv"][h, :, -1], np.float64).tolist()
        out.append(row)
    return out


def plot(curves, static, run_cfg, path):
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (name, tv) in enumerate(curves.items()):  # tv: [S, T], NaN between evaluations
        steps = np.nonzero(~np.isnan(tv[0]))[0]
        ax.semilogy(steps, tv[:, steps].mean(0), label=name, color=f"C{i}")
        ax.fill_between(steps, tv[:, steps].min(0), tv[:, steps].max(0), color=f"C{i}", alpha=0.2)
    ax.set_xlabel("iteration")
    ax.set_ylabel("exact TV (half-sum)")
    ax.set_title(f"hypergrid {static.dim}x{static.height}, R0={static.r0}, {run_cfg.num_seeds} seeds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    config = cli.get_config()
    try:
        static, run_cfg, hparams, settings, labels = build(config, FLAGS.sweep)
        losses = static.loss_names()
        run_config = {"static": as_dict(static), "run": as_dict(run_cfg),
                      "hparams": settings}
        wd = cli.open_workdir(f"gfn_hypergrid_{static.dim}x{static.height}", run_config,
                              has_checkpoints=sub_runs_have_checkpoints)
    except (ConfigError, WorkdirError) as err:
        sys.exit(f"error: {err}")
    print(f"GFlowNet losses {losses} on hypergrid {static.dim}x{static.height}: {len(settings)} "
          f"setting(s) x {run_cfg.num_seeds} seeds, {static.num_iterations} iterations, on "
          f"{jax.device_count()} {jax.devices()[0].platform} device(s).", flush=True)
    with wd:
        rows, curves = [], {}
        for loss in losses:
            metrics = train_loss(loss, static, run_cfg, hparams, wd)
            if metrics is None:
                print(f"Stopped during {loss} (--stop_after); continue with --resume.", flush=True)
                return
            for r in summarise(loss, metrics, labels, settings):
                rows.append(r)
                print(f"[{loss}{'' if len(settings) == 1 else ' ' + r['label']}] TV {r['tv'][0]:.4f} "
                      f"+- {r['tv'][1]:.4f}, JSD {r['jsd'][0]:.5f}, |dlogZ| {r['logz_err'][0]:.4f} "
                      f"+- {r['logz_err'][1]:.4f}, modes {r['modes_found'][0]:.1f}", flush=True)
            for h, label in enumerate(labels):
                curves[loss if len(settings) == 1 else f"{loss} {label}"] = metrics["eval/tv"][h]
        wd.write_json("summary.json", {"runs": rows, "config": run_config})
        plot(curves, static, run_cfg, wd.file("tv_curves.png"))
    print(json.dumps([{k: r[k] for k in ("loss", "label", "tv", "logz_err")} for r in rows], indent=1))
    print(f"Wrote {wd.file('summary.json')} and {wd.file('tv_curves.png')}")


if __name__ == "__main__":
    cli.run(main)
