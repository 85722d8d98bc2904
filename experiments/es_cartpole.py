"""Neuroevolution on CartPole-v1: EvoLLM with block-wise LM queries vs ES baselines.

    python experiments/es_cartpole.py                     # teacher-trained small LM + baselines
    python experiments/es_cartpole.py --config=experiments/configs/es_cartpole.py:smollm2
    python experiments/es_cartpole.py --workdir=runs/es_cartpole_x --resume   # finish a killed run

Fitness = return of one episode (max 500) of a 4-hidden-unit tanh MLP policy whose 30 parameters
are the search vector; EvoLLM queries the LM in 15 blocks of 2 per generation, all blocks and seeds
in one batched `generate` call. Each strategy (x ablation value) is one cell of
`<workdir>/results.jsonl` (`lfx.experiment.CellLog`; `--resume` skips the finished ones);
`summary.md` tabulates them. Every name, number and file is checked before the workdir is opened.
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from lfx import envs
from lfx.es import make_search, neuro
from lfx.es.evollm.models import load_language_model
from lfx.es.experiment import (
    EVOLLM,
    ESSettings,
    NeuroSettings,
    ablation_variants,
    build_strategy,
    validate_settings,
)
from lfx.experiment import CellLog, ConfigError, cli, from_configdict

FLAGS = cli.define_flags("es_cartpole.py:default")


def build(config):
    """Config -> (NeuroSettings, ESSettings, fitness, dim, names); validates everything."""
    neuro_s, es_s = from_configdict(config, NeuroSettings, ESSettings)
    for field in ("hidden", "num_seeds", "num_episodes", "max_steps"):
        if getattr(neuro_s, field) < 1:
            raise ConfigError(f"config.{field} must be >= 1, got {getattr(neuro_s, field)}.")
    try:
        envs.registry.check_name(neuro_s.env)
    except ValueError as err:
        raise ConfigError(f"config.env: {err}") from None
    fitness, x0, _ = neuro.make_policy_fitness(
        neuro_s.env, hidden=(neuro_s.hidden,), num_episodes=neuro_s.num_episodes,
        max_steps=neuro_s.max_steps)
    names = validate_settings(es_s, (int(x0.size),))
    return neuro_s, es_s, fitness, int(x0.size), names


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    config = cli.get_config()
    neuro_s, es_s, fitness, dim, names = build(config)
    e = es_s.evollm
    lm = load_language_model(e.lm, e.lm_path, e.adapter_path) if EVOLLM in names else None
    run_config = {"neuro": dataclasses.asdict(neuro_s), "es": dataclasses.asdict(es_s)}
    wd = cli.open_workdir(f"es_cartpole_{neuro_s.tag}", run_config,
                          has_checkpoints=CellLog.has_cells)
    keys = jax.random.split(jax.random.key(2024), neuro_s.num_seeds)

    def cell(name, s, label):
        def compute():
            strategy = build_strategy(name, s, dim, lm)
            search = jax.jit(jax.vmap(make_search(strategy, fitness, s.num_generations),
                                      in_axes=(0, None, None, None)))
            t0 = time.time()
            _, m = search(keys, jnp.full(dim, s.init_mean, jnp.float32),
                          strategy.default_params, None)
            best = np.asarray(m["best_fitness"])
            extra = {k: int(np.asarray(v).sum()) for k, v in m.items() if k.startswith("evollm/")}
            return {"strategy": label, "best_return": best.tolist(), "wall_s": time.time() - t0,
                    **extra}
        return compute

    todo = []
    for name in names:
        for ab, s in ablation_variants(es_s):
            label = (name + (f"[{s.evollm.lm}]" if name == EVOLLM else "")
                     + (f"[{ab}]" if ab else ""))
            todo.append((label, cell(name, s, label)))
    with wd:
        log = CellLog(wd)
        rows = log.run(todo, progress=FLAGS.progress, desc="es_cartpole strategies")
        lines = [f"{neuro_s.env}, {dim} parameters, N={es_s.population_size}, "
                 f"G={es_s.num_generations}, seeds={neuro_s.num_seeds}; best return so far "
                 f"(mean +- std over seeds)\n",
                 "| strategy | gen 5 | gen 10 | final | wall s |", "|---|---|---|---|---|"]
        for r in rows:
            best = np.asarray(r["best_return"])

            def at(g, best=best):
                g = min(g, best.shape[1]) - 1
                return f"{best[:, g].mean():.1f} +- {best[:, g].std():.1f}"

            lines.append(f"| {r['strategy']} | {at(5)} | {at(10)} | {at(best.shape[1])} | "
                         f"{r['wall_s']:.0f} |")
        path = wd.file("summary.md")
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(path + ".tmp", path)
    print("\n".join(lines))


if __name__ == "__main__":
    cli.run(main)
