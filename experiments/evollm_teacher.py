"""Teacher trajectories (SNES / CMA-ES on sampled BBOB tasks) -> train the small LM used by EvoLLM.

    python experiments/evollm_teacher.py                       # writes runs/evollm_teacher/teacher_lm.pkl
    python experiments/es_bbob.py --config=experiments/configs/es_bbob.py:teacher

Each example is EvoLLM's own prompt for one block (built by `lfx.es.evollm.teacher` from the
teacher's populations) followed by the teacher's next mean for that block (Lange et al. 2024,
arXiv:2402.18381, instruction fine-tuning on teacher trajectories). The LM is lfx.lm's Llama at a
tiny size with the character tokenizer, trained from scratch with `lfx.lm.train_lm`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from lfx import lm  # noqa: E402
from lfx.es import bbob, make_strategy  # noqa: E402
from lfx.es.evollm import EvoLLM, EvoLLMConfig, lfx_lm, teacher  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "evollm_teacher.py:default")
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/evollm_teacher", "Output folder.")


def make_texts(cfg, tok, fns):
    texts = []
    for dim in [int(d) for d in cfg.dims.split(",")]:
        ev = EvoLLM(
            EvoLLMConfig(
                population_size=cfg.population_size, num_dims=dim, block_size=cfg.block_size,
                context_length=cfg.context_length, x_decimals=cfg.x_decimals,
                fitness_digits=cfg.fitness_digits,
            ),
            # only the grammar is needed from the LM here; the char tokenizer suffices
            lfx_lm(None, None, tok),
        )
        fitness = bbob.make_fitness(fns, dim)
        for t_i, name in enumerate(cfg.teachers.split(",")):
            strategy = make_strategy(name, population_size=cfg.population_size, num_dims=dim)
            rollout = teacher.make_rollout(ev, strategy, fitness, cfg.num_generations)
            key = jax.random.key(cfg.seed * 7919 + dim * 31 + t_i)
            k_task, k_mean, k_run = jax.random.split(key, 3)
            tasks = jax.vmap(lambda k: bbob.sample_task(k, fns, dim))(jax.random.split(k_task, cfg.tasks_per_dim))
            means = jax.random.uniform(k_mean, (cfg.tasks_per_dim, dim), minval=-cfg.init_mean_scale,
                                       maxval=cfg.init_mean_scale)
            out = jax.jit(jax.vmap(rollout, in_axes=(0, 0, None, 0)))(
                jax.random.split(k_run, cfg.tasks_per_dim), means, strategy.default_params, tasks
            )
            texts += teacher.to_texts(ev, *out)
    return texts


def main(_):
    cfg = _CONFIG.value
    os.makedirs(_WORKDIR.value, exist_ok=True)
    tok = lm.CharTokenizer()
    fns = bbob.BBOB_FNS if cfg.train_fns == "all" else tuple(cfg.train_fns.split(","))
    cache = os.path.join(_WORKDIR.value, "teacher_texts.json")
    if os.path.exists(cache):
        with open(cache) as f:
            texts = json.load(f)
        t0 = time.time()
    else:
        t0 = time.time()
        texts = make_texts(cfg, tok, fns)
        with open(cache, "w") as f:
            json.dump(texts, f)
    print(f"{len(texts)} teacher examples in {time.time() - t0:.1f}s; example:\n{texts[len(texts) // 2]}")
    lengths = [len(t) for t in texts]
    config = lm.tiny_config(tok.vocab_size, dim=cfg.dim, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
                            n_kv_heads=cfg.n_kv_heads, hidden_dim=cfg.hidden_dim, max_seq_len=256)
    batches = teacher.tokenize_batches(tok, texts, cfg.batch_size, cfg.seq_len, jax.random.key(cfg.seed))
    params = lm.init_params(jax.random.key(cfg.seed), config)
    t0 = time.time()
    params, losses = lm.train_lm(params, config, batches, lr=cfg.lr, num_steps=cfg.num_steps,
                                 key=jax.random.key(cfg.seed + 1), return_losses=True)
    losses = np.asarray(losses)
    train_s = time.time() - t0
    print(f"trained {cfg.num_steps} steps in {train_s:.1f}s; loss {losses[:20].mean():.3f} -> {losses[-50:].mean():.3f}")
    with open(os.path.join(_WORKDIR.value, "teacher_lm.pkl"), "wb") as f:
        pickle.dump({"params": jax.tree.map(np.asarray, params), "config": dataclasses.asdict(config),
                     "chars": tok.chars, "init_seed": cfg.seed}, f)
    with open(os.path.join(_WORKDIR.value, "summary.json"), "w") as f:
        json.dump({"num_examples": len(texts), "max_chars": max(lengths), "mean_chars": float(np.mean(lengths)),
                   "loss_first20": float(losses[:20].mean()), "loss_last50": float(losses[-50:].mean()),
                   "train_s": train_s, "config": cfg.to_dict()}, f, indent=1)


if __name__ == "__main__":
    app.run(main)
