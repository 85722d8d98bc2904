"""Meta-train LPG / TA-LPG on LPG's random grid worlds with ES or meta-gradients, then measure how
much the discovered targets change with training progress n/N.

    nice -n 10 python experiments/meta_lpg.py --config=experiments/configs/meta_lpg.py:ta_lpg_es
    nice -n 10 python experiments/meta_lpg.py --config=experiments/configs/meta_lpg.py:ta_lpg_metagrad
    python experiments/meta_lpg.py --workdir=runs/meta_lpg_x --resume     # continue a stopped run

Generations (ES) or meta-gradient steps run through the shared harness (`lfx.experiment.run_chunked`:
orbax checkpoints, exact resume, a NaN stop, one row per update in `<workdir>/metrics.jsonl|csv`);
`config.max_minutes` stops cleanly at a checkpoint. At the end: `params.npz`, `targets.json` (target
variation with progress and the final evaluation); experiments/eval_lpg.py compares runs, plots the
targets over the lifetime and evaluates transfer to MinAtar.

Target variation (for a temporally-aware η): on a fixed batch of trajectories collected mid-lifetime,
π̂_t(p) is recomputed for p in {0, 0.1, ..., 1}; the reported `pi_hat_progress_variation` is
mean_t std_p π̂_t(p) / mean_p std_t π̂_t(p) (0 = progress is ignored; 1 = progress moves targets as
much as the trajectory does), and `y_hat_progress_tv` the mean total-variation distance between
ŷ_t(p) and ŷ_t(0.5).
"""

from __future__ import annotations

import dataclasses
import sys
import time

import jax
import numpy as np
from absl import flags, logging

from lfx.experiment import (
    ConfigError,
    MetricWriter,
    RunConfig,
    check_finite_hparams,
    cli,
    from_configdict,
    run_chunked,
    stack_hparams,
)
from lfx.meta import es, lpg_analysis, lpg_train

FLAGS = cli.define_flags("meta_lpg.py:ta_lpg_es")
flags.DEFINE_integer("stop_after", None, "Stop after this many updates without writing results, "
                     "as if killed (tests).")


def build(config):
    estimator = config.get("estimator", "es")
    static, run, hp = from_configdict(config, lpg_train.MetaLPGConfig, RunConfig,
                                      hparams=lpg_train.hparams_class(estimator))
    run.validate()
    if run.num_seeds != 1:
        raise ConfigError("meta_lpg.py runs one meta-training run: set config.num_seeds=1.")
    check_finite_hparams(hp)
    lpg_train.validate(static, hp)
    return static, run, hp


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    static, run_cfg, hp = build(cli.get_config())
    recipe = lpg_train.make_train(static, seed=run_cfg.seed)
    fingerprint = {"meta_lpg": {k: v for k, v in dataclasses.asdict(static).items()
                                if k != "max_minutes"},
                   "run": dataclasses.asdict(run_cfg), "hparams": dataclasses.asdict(hp)}
    wd = cli.open_workdir(f"meta_lpg_{static.variant}", fingerprint)
    writer = MetricWriter(wd.path, batch_names=("setting", "seed"), tensorboard=FLAGS.tensorboard,
                          wandb=FLAGS.wandb)
    # key(seed) itself, as before the harness, so recorded runs reproduce.
    init, run = es.harness_functions(recipe, jax.random.key(run_cfg.seed)[None],
                                     stack_hparams([hp]))
    t0 = time.time()
    deadline = (lambda done: time.time() - t0 > 60 * static.max_minutes) if static.max_minutes \
        else None
    with wd:
        try:
            state, metrics = run_chunked(
                init, run, total_updates=recipe.num_updates, chunk_size=run_cfg.chunk_size,
                workdir=wd, checkpoint_every=run_cfg.checkpoint_every,
                keep_checkpoints=run_cfg.keep_checkpoints, writer=writer, progress=FLAGS.progress,
                progress_metric="meta/fitness_mean" if static.estimator == "es" else "meta/loss",
                stop_after=FLAGS.stop_after, should_stop=deadline,
            )
        finally:
            writer.close()
        done = next(iter(metrics.values())).shape[-1]
        if FLAGS.stop_after is not None and done < recipe.num_updates:
            print(f"Stopped after update {done} (--stop_after).")
            return
        wall = time.time() - t0
        cfg = static.lpg_config()
        init_params = lpg_train.init_params(static, run_cfg.seed)
        params = jax.tree.map(lambda x: x[0, 0], jax.device_get(es.means(recipe, state, 1, 1)))
        np.savez(wd.file("params.npz"),
                 **{"/".join(map(str, p)): np.asarray(v) for p, v in
                    jax.tree_util.tree_flatten_with_path(params)[0]})
        out = {
            "variant": static.variant,
            "command": "python " + " ".join(sys.argv),
            "steps_done": int(done),
            "stopped_early": bool(done < recipe.num_updates),
            "wall_time_s": wall,
            "eval_final_reward_rate_init": lpg_train.evaluate(cfg, init_params, jax.random.key(777)),
            "eval_final_reward_rate_trained": lpg_train.evaluate(cfg, params, jax.random.key(777)),
        }
        if cfg.temporally_aware:
            out["targets_init"] = lpg_analysis.target_variation(cfg, init_params, jax.random.key(5))
            out["targets_trained"] = lpg_analysis.target_variation(cfg, params, jax.random.key(5))
        wd.write_json("targets.json", out)
    print({k: v for k, v in out.items() if k not in ("targets_init", "targets_trained")})
    if cfg.temporally_aware:
        print("variation init", out["targets_init"]["pi_hat_progress_variation"],
              "trained", out["targets_trained"]["pi_hat_progress_variation"])


if __name__ == "__main__":
    cli.run(main)
