"""Neuroevolution on CartPole-v1: EvoLLM with block-wise LM queries vs ES baselines.

    python experiments/es_cartpole.py                     # teacher-trained small LM + baselines
    python experiments/es_cartpole.py --config=experiments/configs/es_cartpole.py:smollm2

Fitness = return of one episode (max 500) of a 4-hidden-unit tanh MLP policy whose 30 parameters
are the search vector; EvoLLM queries the LM in 15 blocks of 2 per generation, all blocks and seeds
in one batched `generate` call. Writes `<workdir>/results.jsonl` and `summary.md`.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from experiments.es_common import build_strategy, load_lm  # noqa: E402
from lfx.es import make_search, neuro  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "es_cartpole.py:default")
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder (default runs/es_cartpole_<tag>).")


def main(_):
    cfg = _CONFIG.value
    workdir = _WORKDIR.value or f"runs/es_cartpole_{cfg.tag}"
    os.makedirs(workdir, exist_ok=True)
    fitness, x0, _ = neuro.make_policy_fitness(
        cfg.env, hidden=(cfg.hidden,), num_episodes=cfg.num_episodes, max_steps=cfg.max_steps
    )
    dim = x0.size
    names = cfg.strategies.split(",")
    lm = load_lm(cfg.evollm.lm, cfg.evollm.lm_path) if "evollm" in names else None
    keys = jax.random.split(jax.random.key(2024), cfg.num_seeds)
    mean = jnp.full(dim, cfg.init_mean, jnp.float32)
    lines = [f"{cfg.env}, {dim} parameters, N={cfg.population_size}, G={cfg.num_generations}, "
             f"seeds={cfg.num_seeds}; best return so far (mean +- std over seeds)\n",
             "| strategy | gen 5 | gen 10 | final | wall s |", "|---|---|---|---|---|"]
    with open(os.path.join(workdir, "results.jsonl"), "w") as out:
        for name in names:
            strategy = build_strategy(name, cfg, dim, lm)
            search = jax.jit(jax.vmap(make_search(strategy, fitness, cfg.num_generations), in_axes=(0, None, None, None)))
            t0 = time.time()
            _, m = search(keys, mean, strategy.default_params, None)
            best = np.asarray(m["best_fitness"])
            wall = time.time() - t0
            extra = {k: int(np.asarray(v).sum()) for k, v in m.items() if k.startswith("evollm/")}
            label = name + (f"[{cfg.evollm.lm}]" if name == "evollm" else "")
            out.write(json.dumps({"strategy": label, "best_return": best.tolist(), "wall_s": wall, **extra}) + "\n")

            def cell(g):
                g = min(g, best.shape[1]) - 1
                return f"{best[:, g].mean():.1f} +- {best[:, g].std():.1f}"

            lines.append(f"| {label} | {cell(5)} | {cell(10)} | {cell(best.shape[1])} | {wall:.0f} |")
            print(lines[-1], extra, flush=True)
    with open(os.path.join(workdir, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
