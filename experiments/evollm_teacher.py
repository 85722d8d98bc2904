"""Teacher trajectories (SNES / CMA-ES on sampled BBOB tasks) -> train the small LM used by EvoLLM.

    python experiments/evollm_teacher.py --workdir=runs/evollm_teacher   # writes teacher_lm.npz/.json
    python experiments/es_bbob.py --config=experiments/configs/es_bbob.py:teacher \
        --config.evollm.lm_path=runs/evollm_teacher/teacher_lm.npz
    python experiments/evollm_teacher.py --workdir=runs/evollm_teacher --resume   # a killed run

Each example is EvoLLM's own prompt for one block (built by `lfx.es.evollm.teacher` from the
teacher's populations) followed by the teacher's next mean for that block (Lange et al. 2024,
arXiv:2402.18381, instruction fine-tuning on teacher trajectories). The LM is lfx.lm's Llama at a
tiny size with the character tokenizer, trained from scratch by the `lfx.lm.train.make_train`
recipe through the shared harness: orbax checkpoints every `checkpoint_every` steps, exact
`--resume`, the loss per step in `metrics.jsonl`. Writes `<workdir>/teacher_texts.json`,
`teacher_lm.npz` + `teacher_lm.json` (`lfx.lm.save_lm`: arrays and settings, no Python objects) and
`summary.json`. Everything is validated before the workdir is opened.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import jax
import numpy as np
from absl import logging

from lfx import lm
from lfx.es import bbob
from lfx.es.evollm import teacher
from lfx.es.experiment import split_names
from lfx.es.strategies import STRATEGIES
from lfx.experiment import (
    ConfigError,
    MetricWriter,
    RunConfig,
    check_finite_hparams,
    cli,
    from_configdict,
    recipe_functions,
    run_chunked,
    stack_hparams,
)
from lfx.lm.train import HParams, TrainConfig, make_train, next_token_loss

FLAGS = cli.define_flags("evollm_teacher.py:default")


def build(config):
    """Config -> (TeacherConfig, RunConfig, HParams, fns, LlamaConfig); validates everything."""
    t, run, hp = from_configdict(config, teacher.TeacherConfig, RunConfig, hparams=HParams)
    run.validate()
    if run.num_seeds != 1:
        raise ConfigError(f"config.num_seeds must be 1 (one teacher LM is trained), got "
                          f"{run.num_seeds}.")
    check_finite_hparams(hp)
    try:
        hp.validate()
    except ValueError as err:
        raise ConfigError(f"config.hparams: {err}") from None
    split_names(t.teachers, "teacher strategy", sorted(STRATEGIES), field="teachers")
    fns = bbob.BBOB_FNS if t.train_fns == "all" else split_names(
        t.train_fns, "BBOB function", bbob.BBOB_FNS, field="train_fns")
    try:
        dims = [int(d) for d in t.dims.split(",")]
    except ValueError:
        raise ConfigError(f"config.dims must be comma-separated integers, got {t.dims!r}.") \
            from None
    for name in ("tasks_per_dim", "population_size", "num_generations", "block_size",
                 "context_length", "seq_len", "batch_size", "num_steps"):
        if getattr(t, name) < 1:
            raise ConfigError(f"config.{name} must be >= 1, got {getattr(t, name)}.")
    if min(dims) < 1:
        raise ConfigError(f"config.dims must be positive, got {t.dims!r}.")
    if t.texts_path and not os.path.exists(t.texts_path):
        raise ConfigError(f"config.texts_path {t.texts_path!r} does not exist.")
    try:
        model = lm.tiny_config(lm.CharTokenizer().vocab_size, dim=t.dim, n_layers=t.n_layers,
                               n_heads=t.n_heads, n_kv_heads=t.n_kv_heads,
                               hidden_dim=t.hidden_dim, max_seq_len=256)
    except (ValueError, ZeroDivisionError) as err:
        raise ConfigError(f"The LM sizes do not fit: {err}") from None
    return t, run, hp, tuple(fns), model


def load_texts(path: str) -> list[str]:
    with open(path) as f:
        texts = json.load(f)
    if not isinstance(texts, list) or not texts or not all(isinstance(x, str) for x in texts):
        raise ConfigError(f"{path} is not a non-empty JSON list of teacher texts.")
    return texts


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    config = cli.get_config()
    t, run_cfg, hp, fns, model = build(config)
    tok = lm.CharTokenizer()
    run_config = {"teacher": dataclasses.asdict(t), "run": dataclasses.asdict(run_cfg),
                  "hparams": {"lr": float(hp.lr)}}
    wd = cli.open_workdir("evollm_teacher", run_config)
    with wd:
        cache = wd.file("teacher_texts.json")
        t0 = time.time()
        if t.texts_path or (wd.resuming and os.path.exists(cache)):
            texts = load_texts(t.texts_path or cache)
        else:
            texts = teacher.make_texts(t, tok, fns, run_cfg.seed)
        if not os.path.exists(cache):
            wd.write_json("teacher_texts.json", texts)
        print(f"{len(texts)} teacher examples in {time.time() - t0:.1f}s; example:\n"
              f"{texts[len(texts) // 2]}", flush=True)
        if len(texts) < t.batch_size:
            raise ConfigError(f"{len(texts)} examples are fewer than one batch of "
                              f"{t.batch_size}; raise tasks_per_dim or lower batch_size.")
        tokens = teacher.tokenize_batches(tok, texts, t.batch_size, t.seq_len,
                                          jax.random.key(run_cfg.seed))
        data = {"tokens": tokens, "mask": tokens != tok.pad_id}
        recipe = make_train(TrainConfig(num_steps=t.num_steps), next_token_loss(model))
        params0 = lm.init_params(jax.random.key(run_cfg.seed), model)
        # the data key of seed s is key(s + 1), as lfx.lm.train_lm was called before the harness
        keys = jax.random.key(run_cfg.seed + 1)[None]
        init, run = recipe_functions(recipe, keys, stack_hparams([hp]), params0, None, data)
        writer = MetricWriter(wd.path, batch_names=("setting", "seed"),
                              tensorboard=FLAGS.tensorboard, wandb=FLAGS.wandb)
        t0 = time.time()
        try:
            state, metrics = run_chunked(
                init, run, total_updates=t.num_steps, chunk_size=run_cfg.chunk_size, workdir=wd,
                checkpoint_every=run_cfg.checkpoint_every,
                keep_checkpoints=run_cfg.keep_checkpoints, writer=writer,
                progress=FLAGS.progress, progress_metric="train/loss")
        finally:
            writer.close()
        train_s = time.time() - t0
        params = jax.tree.map(lambda x: np.asarray(x[0, 0]), state.trainable)
        losses = metrics["train/loss"][0, 0]
        print(f"trained {t.num_steps} steps in {train_s:.1f}s (this invocation); loss "
              f"{losses[:20].mean():.3f} -> {losses[-50:].mean():.3f}", flush=True)
        npz, side = lm.save_lm(wd.file("teacher_lm.npz"), params, model, tok,
                               init_seed=run_cfg.seed, num_steps=t.num_steps,
                               num_examples=len(texts))
        lengths = [len(x) for x in texts]
        wd.write_json("summary.json", {
            "num_examples": len(texts), "max_chars": max(lengths),
            "mean_chars": float(np.mean(lengths)), "loss_first20": float(losses[:20].mean()),
            "loss_last50": float(losses[-50:].mean()), "train_s_this_invocation": train_s,
            "config": run_config})
    print(f"Wrote {npz} and {side}")


if __name__ == "__main__":
    cli.run(main)
