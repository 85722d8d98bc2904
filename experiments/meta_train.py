"""Meta-train an LPO / TA-LPO drift function with OpenAI-ES over whole PPO agent lifetimes.

    nice -n 10 python experiments/meta_train.py --config=experiments/configs/meta_train.py:ta_lpo_cartpole_cpu
    python experiments/meta_train.py --config=experiments/configs/meta_train.py:lpo_cartpole_cpu \
        --workdir=runs/meta_lpo --config.num_generations=100      # re-running resumes from the checkpoint

Writes `<workdir>/metrics.jsonl` (one line per generation), an orbax checkpoint of the ES state
(`checkpoint/`, resumed automatically), `params.npz` + `provenance.json` (the ES mean) and
`fitness.png`; with `config.pretrained_name` also the shipped copy in lfx/meta/pretrained/.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from lfx.meta import es, fitness, lpo  # noqa: E402
from lfx.meta.pretrained import save_pretrained  # noqa: E402
from lfx.rl import ppo  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "meta_train.py:ta_lpo_cartpole_cpu")
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder (default runs/meta_train_<drift>).")
_SAVE_PRETRAINED = flags.DEFINE_bool("save_pretrained", False, "Write into lfx/meta/pretrained.")


def build_tasks(c) -> tuple[list[fitness.Task], lpo.DriftConfig]:
    """Environments x lifetimes of the config as fitness tasks."""
    drift_cfg = lpo.DRIFT_CONFIGS[c.drift]
    objective = lpo.make_lpo_objective(drift_cfg)
    tasks = []
    for env_name in c.env_names:
        for mult in c.lifetime_multipliers:
            cfg = ppo.PPOConfig(
                env_name=env_name,
                num_envs=c.num_envs,
                num_steps=c.num_steps,
                total_timesteps=int(c.total_timesteps * mult),
                update_epochs=c.update_epochs,
                num_minibatches=c.num_minibatches,
                network=c.network,
                hidden_sizes=tuple(c.hidden_sizes),
                activation=c.activation,
            )
            norm = float(c.return_table.get(env_name, 1.0))
            floor = float(c.get("return_floor", {}).get(env_name, 0.0))
            tasks.append(fitness.Task(f"{env_name}_x{mult:g}", ppo.make_train(cfg, objective), norm, floor))
    return tasks, drift_cfg


def main(argv):
    del argv
    c = _CONFIG.value
    workdir = _WORKDIR.value or f"runs/meta_train_{c.drift}"
    os.makedirs(workdir, exist_ok=True)
    tasks, drift_cfg = build_tasks(c)
    hparams = ppo.HParams(**c.hparams)
    kw = dict(hparams=hparams, num_seeds=c.num_seeds, window_fraction=c.window_fraction)
    if c.lifetime_sampling == "cycle":
        fns = [fitness.make_fitness([t], **kw) for t in tasks]
    elif c.lifetime_sampling == "all":
        fns = [fitness.make_fitness(tasks, **kw)]
    else:
        raise ValueError("lifetime_sampling must be 'all' or 'cycle'.")
    es_cfg = es.ESConfig(
        population_size=c.population_size,
        num_generations=c.num_generations,
        learning_rate=c.es_lr,
        lr_decay=c.es_lr_decay,
        sigma=c.sigma,
        sigma_decay=c.sigma_decay,
    )
    key = jax.random.key(c.seed)
    init = lpo.init_drift(jax.random.key(c.seed + 1), drift_cfg, output_scale=c.init_output_scale)
    t0 = time.time()
    mean, _, hist = es.meta_train_es(
        key, None, init, es_cfg, workdir=workdir, checkpoint_every=c.checkpoint_every,
        fitness_fns=fns, max_minutes=c.max_minutes or None,
    )
    wall = time.time() - t0
    np.savez(os.path.join(workdir, "params.npz"), **{k: np.asarray(v) for k, v in mean.items()})
    info = {
        "command": "python " + " ".join(sys.argv),
        "config": c.to_dict(),
        "generations_done": len(hist),
        "wall_time_s_this_invocation": wall,
        "hardware": f"{platform.machine()} CPU x{os.cpu_count()} ({jax.devices()[0].platform}), "
        "shared machine",
        "final_fitness_mean": hist[-1]["meta/fitness_mean"] if hist else None,
        "initial_fitness_mean": hist[0]["meta/fitness_mean"] if hist else None,
    }
    with open(os.path.join(workdir, "provenance.json"), "w") as f:
        json.dump(info, f, indent=1, default=str)
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415

        g = [h["generation"] for h in hist]
        plt.figure(figsize=(5, 3.2))
        plt.plot(g, [h["meta/fitness_mean"] for h in hist], label="population mean")
        plt.plot(g, [h["meta/fitness_max"] for h in hist], label="population max", alpha=0.6)
        plt.xlabel("generation")
        plt.ylabel("normalised return")
        plt.title(c.drift)
        plt.legend()
        plt.tight_layout()
        plt.savefig(os.path.join(workdir, "fitness.png"), dpi=120)
    except Exception as err:  # noqa: BLE001 (a plot must not lose a finished run)
        print("plot failed:", err)
    if _SAVE_PRETRAINED.value and c.pretrained_name:
        path = save_pretrained(c.pretrained_name, mean, drift_cfg, info)
        print("saved", path)
    print(json.dumps({k: info[k] for k in ("generations_done", "initial_fitness_mean",
                                            "final_fitness_mean", "wall_time_s_this_invocation")}))


if __name__ == "__main__":
    app.run(main)
