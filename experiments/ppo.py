"""Train PPO over several seeds (and optionally a hyperparameter grid) in one vmapped call.

    python experiments/ppo.py                                   # CartPole-v1, 8 seeds
    python experiments/ppo.py --config=experiments/configs/ppo.py:breakout
    python experiments/ppo.py --config.total_timesteps=100000 --config.num_seeds=4
    python experiments/ppo.py --sweep="lr=1e-4,2.5e-4,1e-3;ent_coef=0.0,0.01"
    python experiments/ppo.py --workdir=runs/ppo_cartpole --resume   # continue a killed run
    python experiments/ppo.py --print_config                    # every field, resolved
    LFX_DISTRIBUTED=1 python experiments/ppo.py --shard --workdir=...  # per process (SCALING.md)

Writes `<workdir>/metrics.jsonl|csv` (one row per setting, seed and update), `summary.json` (per
setting), `learning_curve.png`, and orbax checkpoints every `config.checkpoint_every` updates.
"""

from __future__ import annotations

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
from lfx.rl import ppo
from lfx.utils.plotting import plot_learning_curves

FLAGS = cli.define_flags("ppo.py:cartpole", sweep=True)
KL_WARN = 1.0  # approx_kl far above PPO's usual ~0.01-0.05: the learning rate is likely too high


def build(config, sweep: str):
    """Config -> (PPOConfig, RunConfig, HParams batch [H], setting dicts, labels); validates all."""
    static, run, base = from_configdict(config, ppo.PPOConfig, RunConfig, hparams=ppo.HParams)
    static.validate()
    run.validate()
    settings, dicts, labels = cli.sweep_settings(base, sweep)
    for hp in settings:
        check_finite_hparams(hp)
        hp.validate()
    return static, run, stack_hparams(settings), dicts, labels


def warn_on_kl(metrics, done):
    kl = metrics.get("train/approx_kl")
    if kl is not None and np.nanmax(kl) > KL_WARN:
        print(f"warning: approx_kl reached {np.nanmax(kl):.3g} by update {done} (PPO usually "
              f"keeps it below ~0.05); the learning rate is probably too high.", flush=True)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    config = cli.get_config()
    static, run_cfg, hparams, settings, labels = build(config, FLAGS.sweep)
    recipe = ppo.make_ppo(static)
    num_updates = static.num_updates
    run_config = {"ppo": static.__dict__, "run": run_cfg.__dict__, "hparams": settings}
    wd = cli.open_workdir(f"ppo_{static.env_name}", run_config)
    writer = MetricWriter(wd.path, batch_names=("setting", "seed"),
                          steps_per_update=static.batch_size, tensorboard=FLAGS.tensorboard,
                          wandb=FLAGS.wandb, primary=wd.primary)
    keys = jax.random.split(jax.random.key(run_cfg.seed), run_cfg.num_seeds)
    shard = (lambda s: parallel.shard_population(s, parallel.make_mesh(), axis=1)) if FLAGS.shard \
        else None
    init, run = recipe_functions(recipe, keys, hparams, shard=shard)
    print(
        f"PPO on {static.env_name}: {len(settings)} setting(s) x {run_cfg.num_seeds} seeds, "
        f"{num_updates} updates x {static.batch_size} steps = {num_updates * static.batch_size:,} "
        f"steps per run, on {jax.device_count()} {jax.devices()[0].platform} device(s)."
    )
    with wd:
        try:
            _, metrics = run_chunked(
                init, run, total_updates=num_updates, chunk_size=run_cfg.chunk_size, workdir=wd,
                checkpoint_every=run_cfg.checkpoint_every, keep_checkpoints=run_cfg.keep_checkpoints,
                writer=writer, progress=FLAGS.progress, on_chunk=warn_on_kl, place=shard,
            )
        finally:
            writer.close()
        returns = metrics["train/episode_return"]  # [H, S, T]
        steps = np.arange(1, num_updates + 1) * static.batch_size
        summary, curves = [], {}
        for h, (s, label) in enumerate(zip(settings, labels)):
            final = returns[h, :, -1]
            summary.append({
                "setting": s, "label": label,
                "final_return_mean": float(final.mean()), "final_return_std": float(final.std()),
                "final_return_median": float(np.median(final)), "final_returns": final.tolist(),
            })
            curves[label if len(settings) > 1 else "PPO"] = (steps, returns[h])
            print(f"[{label}] final episodic return over {run_cfg.num_seeds} seeds: "
                  f"mean {final.mean():.1f} +- {final.std():.1f}, median {np.median(final):.1f}")
        wd.write_json("summary.json", {"env": static.env_name, "env_steps": int(steps[-1]),
                                       "runs": summary})
        if not wd.primary:  # of several processes, process 0 writes
            return
        png = plot_learning_curves(curves, wd.file("learning_curve.png"),
                                   title=f"PPO on {static.env_name} (mean +- std over seeds)")
    print(f"Wrote {png} and {writer.jsonl_path}")


if __name__ == "__main__":
    cli.run(main)
