"""Meta-train an LPO / TA-LPO drift function with OpenAI-ES over whole PPO agent lifetimes.

    nice -n 10 python experiments/meta_train.py --config=experiments/configs/meta_train.py:ta_lpo_cartpole_cpu
    python experiments/meta_train.py --config=experiments/configs/meta_train.py:lpo_cartpole_cpu \
        --workdir=runs/meta_lpo --config.num_generations=100 --config.max_minutes=20
    python experiments/meta_train.py --workdir=runs/meta_lpo --resume ...   # continue a stopped run
    python experiments/meta_train.py --sweep="lr=0.02,0.05;sigma=0.03,0.1"   # ES settings, vmapped

Generations run through the shared harness (`lfx.experiment.run_chunked`): orbax checkpoints every
`config.checkpoint_every` generations, exact resume, a NaN stop, one metric row per (setting, seed,
generation) in `<workdir>/metrics.jsonl|csv`; `config.max_minutes` stops cleanly at a checkpoint.
At the end: `params.npz` + `provenance.json` (the ES mean, readable by eval_objective.py), per run
`params_setting<h>_seed<s>.npz` when there are several, `fitness.png`, `summary.json`; with
`--save_pretrained` and `config.pretrained_name` also the shipped copy in lfx/meta/pretrained/.
"""

from __future__ import annotations

import dataclasses
import os
import platform
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
from lfx.meta import es, lpo_train
from lfx.meta.pretrained import save_pretrained
from lfx.rl import ppo

FLAGS = cli.define_flags("meta_train.py:ta_lpo_cartpole_cpu", sweep=True)
flags.DEFINE_bool("save_pretrained", False, "Also write the result into lfx/meta/pretrained.")
flags.DEFINE_integer("stop_after", None, "Stop after this many generations without writing "
                     "results, as if killed (tests).")


def build(config, sweep: str):
    """Config -> (MetaTrainConfig, RunConfig, ES HParams list, agent HParams); validates all."""
    static, run, base, agent_hp = from_configdict(
        config, lpo_train.MetaTrainConfig, RunConfig, hparams=es.HParams,
        agent_hparams=ppo.HParams)
    run.validate()
    settings, _, labels = cli.sweep_settings(base, sweep)
    for hp in settings:
        check_finite_hparams(hp)
        lpo_train.validate(static, hp, agent_hp)
    check_finite_hparams(agent_hp, "agent_hparams")
    return static, run, settings, labels, agent_hp


def seed_keys(run: RunConfig) -> jax.Array:
    # One run uses key(seed) itself, so the runs recorded before the harness (docs/results/meta.md,
    # the shipped provenance) reproduce; several runs split it.
    if run.num_seeds == 1:
        return jax.random.key(run.seed)[None]
    return jax.random.split(jax.random.key(run.seed), run.num_seeds)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    config = cli.get_config()
    static, run_cfg, settings, labels, agent_hp = build(config, FLAGS.sweep)
    if FLAGS.save_pretrained and not static.pretrained_name:
        raise ConfigError("--save_pretrained needs config.pretrained_name, e.g. ta_lpo/cartpole_cpu.")
    fingerprint = lpo_train.run_config(static, run_cfg, settings, agent_hp)
    recipe = lpo_train.make_train(static, agent_hp, seed=run_cfg.seed)
    hparams = stack_hparams(settings)
    num_h, num_s = len(settings), run_cfg.num_seeds
    wd = cli.open_workdir(f"meta_train_{static.drift}", fingerprint)
    writer = MetricWriter(wd.path, batch_names=("setting", "seed"),
                          tensorboard=FLAGS.tensorboard, wandb=FLAGS.wandb)
    init, run = es.harness_functions(recipe, seed_keys(run_cfg), hparams)
    print(f"ES meta-training of {static.drift}: {num_h} setting(s) x {num_s} run(s), population "
          f"{static.population_size}, {static.num_generations} generations, tasks "
          f"{[t.name for t in lpo_train.build_tasks(static)]}.", flush=True)
    t0 = time.time()
    deadline = (lambda done: time.time() - t0 > 60 * static.max_minutes) if static.max_minutes \
        else None
    with wd:
        try:
            state, metrics = run_chunked(
                init, run, total_updates=static.num_generations, chunk_size=run_cfg.chunk_size,
                workdir=wd, checkpoint_every=run_cfg.checkpoint_every,
                keep_checkpoints=run_cfg.keep_checkpoints, writer=writer, progress=FLAGS.progress,
                progress_metric="meta/fitness_mean", stop_after=FLAGS.stop_after,
                should_stop=deadline,
            )
        finally:
            writer.close()
        done = metrics["meta/fitness_mean"].shape[-1]
        if FLAGS.stop_after is not None and done < static.num_generations:
            print(f"Stopped after generation {done} (--stop_after).")
            return
        wall = time.time() - t0
        params = jax.device_get(es.means(recipe, state, num_h, num_s))
        first = jax.tree.map(lambda x: x[0, 0], params)
        np.savez(wd.file("params.npz"), **{k: np.asarray(v) for k, v in first.items()})
        if num_h * num_s > 1:
            for h in range(num_h):
                for s in range(num_s):
                    np.savez(wd.file(f"params_setting{h}_seed{s}.npz"),
                             **{k: np.asarray(v[h, s]) for k, v in params.items()})
        fit = metrics["meta/fitness_mean"]  # [H, S, G]
        info = {
            "command": "python " + " ".join(sys.argv),
            # lfx.meta.pretrained reads the drift, the PPO settings and "hparams" (the agent's).
            "config": {**dataclasses.asdict(static), "seed": run_cfg.seed,
                       "hparams": dataclasses.asdict(agent_hp)},
            "fingerprint": fingerprint,
            "generations_done": int(done),
            "stopped_early": bool(done < static.num_generations),
            "wall_time_s_this_invocation": wall,
            "hardware": f"{platform.machine()} CPU x{os.cpu_count()} ({jax.devices()[0].platform}), "
                        "shared machine",
            "initial_fitness_mean": float(fit[0, 0, 0]),
            "final_fitness_mean": float(fit[0, 0, -1]),
        }
        wd.write_json("provenance.json", info)
        wd.write_json("summary.json", {
            "labels": labels, "final_fitness_mean": fit[..., -1].tolist(),
            "initial_fitness_mean": fit[..., 0].tolist(), "generations_done": int(done)})
        plot(metrics, labels, static.drift, wd.file("fitness.png"))
        if done < static.num_generations:
            print(f"Stopped at generation {done} of {static.num_generations} (config.max_minutes="
                  f"{static.max_minutes}); continue with --workdir={wd.path} --resume.")
        if FLAGS.save_pretrained and static.pretrained_name:
            print("saved", save_pretrained(static.pretrained_name, first, static.drift_config, info))
    print({k: info[k] for k in ("generations_done", "initial_fitness_mean", "final_fitness_mean",
                                "wall_time_s_this_invocation")})


def plot(metrics, labels, title, path):
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415

        plt.figure(figsize=(5, 3.2))
        for h, label in enumerate(labels):
            mean = metrics["meta/fitness_mean"][h]  # [S, G]
            g = np.arange(1, mean.shape[-1] + 1)
            name = "" if len(labels) == 1 else f"{label}: "
            plt.plot(g, mean.mean(0), label=f"{name}population mean")
            plt.plot(g, metrics["meta/fitness_max"][h].mean(0), label=f"{name}population max",
                     alpha=0.6)
        plt.xlabel("generation")
        plt.ylabel("normalised return")
        plt.title(title)
        plt.legend(fontsize=7)
        plt.tight_layout()
        plt.savefig(path, dpi=120)
        plt.close()
    except Exception as err:  # noqa: BLE001 (a plot must not lose a finished run)
        print("plot failed:", err)


if __name__ == "__main__":
    cli.run(main)
