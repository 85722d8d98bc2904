"""Generate lfx's D4RL-style offline datasets for one env (no downloads), deterministically from a seed.

    python experiments/offline_datasets.py --workdir=datasets/pendulum            # Pendulum-v1 (CPU minutes)
    python experiments/offline_datasets.py --config=experiments/configs/offline_datasets.py:hopper \\
        --workdir=datasets/hopper                                                   # brax, accelerator scale
    python experiments/offline_datasets.py --workdir=datasets/pendulum --resume     # continue a killed run

Trains lfx's SAC through the shared harness (progress bar, checkpoints, exact resume, NaN stop, a
workdir that is never overwritten), snapshotting the actor every `snapshot_every` updates, then
writes `<workdir>/<env>-<level>.npz|json` for the levels random, medium, expert, medium-replay and
medium-expert (`lfx.offline.generate`), and `datasets.json` (the levels with their sizes, returns and
normalised scores) and `sac_curve.png`.
"""

from __future__ import annotations

import sys

import jax
import numpy as np
from absl import logging

from lfx.experiment import MetricWriter, RunConfig, cli, from_configdict, run_chunked
from lfx.offline import dataset as ds
from lfx.offline import generate
from lfx.utils.plotting import plot_learning_curves

FLAGS = cli.define_flags("offline_datasets.py:pendulum")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    config = cli.get_config()
    gen_cfg, run_cfg = from_configdict(config, generate.GenerateConfig, RunConfig)
    gen_cfg.validate()
    run_cfg.validate()
    if run_cfg.num_seeds != 1:
        raise ValueError(f"config.num_seeds={run_cfg.num_seeds}: one generation run makes one set of datasets; "
                         f"use --config.seed=<s> (and its own --workdir) for another.")
    if run_cfg.chunk_size != gen_cfg.snapshot_every:
        raise ValueError(f"config.chunk_size={run_cfg.chunk_size} must equal config.snapshot_every="
                         f"{gen_cfg.snapshot_every} (one chunk ends in one actor snapshot).")
    gen = generate.make_generator(gen_cfg)
    env = gen_cfg.sac_config.env_name
    wd = cli.open_workdir(f"offline_datasets_{env.replace('/', '_')}",
                          {"generate": gen_cfg.__dict__, "run": run_cfg.__dict__})
    per_update = gen_cfg.sac_config.steps_per_update
    writer = MetricWriter(wd.path, batch_names=(), steps_per_update=per_update)
    init = jax.jit(lambda: gen.init(generate.train_key(run_cfg.seed)))
    step = jax.jit(gen.run)
    print(f"SAC on {env} for {gen.num_updates * per_update:,} env steps, an actor snapshot every "
          f"{gen_cfg.snapshot_every * per_update:,}; then {len(generate.LEVELS)} datasets.", flush=True)
    with wd:
        try:
            state, metrics = run_chunked(
                init, lambda s, n: step(s), total_updates=gen.num_updates, chunk_size=run_cfg.chunk_size,
                workdir=wd, checkpoint_every=run_cfg.checkpoint_every, keep_checkpoints=run_cfg.keep_checkpoints,
                writer=writer, progress=FLAGS.progress)
        finally:
            writer.close()
        levels = generate.build_levels(gen, state, run_cfg.seed)
        command = " ".join(["python", *sys.argv])
        rows = {}
        for level, (data, meta) in levels.items():
            name = generate.dataset_name(env, level)
            npz, _ = ds.save(wd.file(name), data, {**meta, "command": command})
            returns = ds.episode_returns(data)
            score = ds.normalized_score(returns, meta["ref_min_return"], meta["ref_max_return"])
            rows[level] = {"file": npz, "size": data.size, "episodes": int(returns.size),
                           "episode_return_mean": float(returns.mean()),
                           "normalized_score_mean": float(score.mean())}
            print(f"{name}: {data.size:,} transitions, {returns.size} episodes, return "
                  f"{returns.mean():.1f} (normalised {score.mean():.1f})")
        wd.write_json("datasets.json", {"env": env, "seed": run_cfg.seed, "command": command,
                                        "ref_min_return": levels["random"][1]["ref_min_return"],
                                        "ref_max_return": levels["random"][1]["ref_max_return"],
                                        "levels": rows})
        steps = np.arange(1, gen.num_updates + 1) * per_update
        plot_learning_curves({"SAC": (steps, metrics["train/episode_return"][None])}, wd.file("sac_curve.png"),
                             title=f"SAC on {env}: the run the datasets come from")
    print(f"Wrote the datasets to {wd.path}")


if __name__ == "__main__":
    cli.run(main)
