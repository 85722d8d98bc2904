"""Low-rank adaptation of the Llama's linear layers (Hu et al. 2021, "LoRA", arXiv:2106.09685).

W' = W + scale * A B with A [in, r] ~ N(0, 1/in) and B [r, out] = 0, so a fresh adapter leaves the
model unchanged. Adapters are a dict {weight name: {"a": [L, in, r], "b": [L, r, out]}} over the
stacked layer weights; `lora_apply` merges them (the merged forward is `forward(lora_apply(...))`,
and gradients reach only A and B). Adapters are saved on their own (`save_lora`, an .npz of A and B
plus a JSON header); `merge_lora_file` merges a saved file into a base model at load time.
"""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lfx.lm.config import LlamaConfig
from lfx.lm.io import ArtifactError, load_npz
from lfx.lm.train import _as_batches, _fit, _Loss, lm_loss, make_optimizer, target_loss

LORA_TARGETS = ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")


def lora_init(key: jax.Array, params: dict, rank: int, *,
              targets: tuple[str, ...] = ("wq", "wv")) -> dict:
    """Adapters for `targets` (names of params["layers"]) of rank `rank`, B = 0."""
    if rank < 1:
        raise ValueError(f"LoRA rank must be >= 1, got {rank}.")
    unknown = set(targets) - set(LORA_TARGETS)
    if unknown:
        raise ValueError(f"Unknown LoRA targets {sorted(unknown)}; choose from {LORA_TARGETS}.")
    lora = {}
    for k, name in zip(jax.random.split(key, len(targets)), targets):
        L, d_in, d_out = params["layers"][name].shape
        lora[name] = {"a": jax.random.normal(k, (L, d_in, rank), jnp.float32) / math.sqrt(d_in),
                      "b": jnp.zeros((L, rank, d_out), jnp.float32)}
    return lora


def lora_apply(params: dict, lora: dict, *, scale: float = 1.0) -> dict:
    """Parameters with W + scale * A B merged into every adapted weight."""
    layers = dict(params["layers"])
    for name, ab in lora.items():
        w = layers[name]
        delta = jnp.einsum("lir,lro->lio", ab["a"], ab["b"])
        layers[name] = (w + scale * delta).astype(w.dtype)
    return {**params, "layers": layers}


def _lora_loss(lora, params, tokens, mask, config, scale):
    return lm_loss(lora_apply(params, lora, scale=scale), config, tokens, mask)


def finetune_lora(params: dict, config: LlamaConfig, lora: dict, token_batches, *, lr: float,
                  num_steps: int, key: jax.Array, mask=None, pad_id: int | None = None,
                  scale: float = 1.0, return_losses: bool = False):
    """Trains only the adapters (base params frozen) on next-token cross-entropy with Adam.

    Args:
      params: frozen base model (e.g. SmolLM2 from `load_smollm2`).
      lora: adapters from `lora_init`.
      token_batches: int [N, B, T] (or [B, T]) right-padded token ids.
      mask: optional [N, B, T] target weights. SmolLM2 pads with its eos id, so pass a mask
        (or pad_id) explicitly; default every token is a target.
      scale: LoRA scale (alpha / rank).
    Returns:
      trained adapters (and the [num_steps] losses with return_losses).
    """
    if num_steps < 1 or lr <= 0:
        raise ValueError(f"finetune_lora needs num_steps >= 1 and lr > 0, got {num_steps}, {lr}.")
    tokens, mask = _as_batches(token_batches, mask, pad_id)
    lora, losses = _fit(lora, params, tokens, mask, key, jnp.float32(lr),
                        loss_fn=_Loss(_lora_loss, config, float(scale)), num_steps=int(num_steps))
    return (lora, losses) if return_losses else lora


def _lora_target_loss(lora, params, tokens, roles, config, scale, num_target):
    return target_loss(lora_apply(params, lora, scale=scale), config, tokens, roles,
                       num_target=num_target)


def finetune_lora_on_targets(params: dict, config: LlamaConfig, lora: dict, token_batches,
                             role_batches, *, lr: float, num_steps: int, key: jax.Array,
                             num_target: int, scale: float = 1.0, return_losses: bool = False):
    """Trains only the adapters with Adam on the target-token loss (`train.target_loss`).

    Args:
      params: frozen base model.
      lora: adapters from `lora_init`.
      token_batches, role_batches: int [N, B, T] left-padded rows and their PAD / PROMPT / TARGET
        roles (`train.encode_prompt_target`, reshaped into N batches); each step draws one batch.
      num_target: K >= the longest target in tokens (logits only for the last K columns).
      scale: LoRA scale (alpha / rank).
    Returns:
      trained adapters (and the [num_steps] training losses with return_losses).
    """
    if num_steps < 1 or lr <= 0:
        raise ValueError(f"finetune_lora_on_targets needs num_steps >= 1 and lr > 0, got "
                         f"{num_steps}, {lr}.")
    tokens = jnp.asarray(token_batches, jnp.int32)
    roles = jnp.asarray(role_batches, jnp.int32)
    if tokens.ndim != 3 or roles.shape != tokens.shape:
        raise ValueError(f"token_batches and role_batches must both be int [N, B, T], got "
                         f"{tokens.shape} and {roles.shape}.")
    lora, losses = _fit(lora, params, tokens, roles, key, jnp.float32(lr),
                        loss_fn=_Loss(_lora_target_loss, config, float(scale), int(num_target)),
                        num_steps=int(num_steps))
    return (lora, losses) if return_losses else lora


def target_loss_fn(config: LlamaConfig, *, scale: float, num_target: int):
    """`loss_fn(lora, base params, tokens, roles)` of the adapters' target loss, for
    `lfx.lm.train.make_train` (hashable)."""
    return _Loss(_lora_target_loss, config, float(scale), int(num_target))


def make_lora_step(config: LlamaConfig, *, lr: float, num_target: int, scale: float = 1.0):
    """(init, step) of the same Adam update as `finetune_lora_on_targets`, one batch per call.

    For long runs driven from Python (progress, wall-clock budgets): `opt_state = init(lora)`,
    `lora, opt_state, loss = step(lora, opt_state, params, tokens [B, T], roles [B, T])`; jit
    `step` (the frozen base `params` is an argument, not a constant folded into the program).
    """
    opt = make_optimizer(lr)
    loss_fn = _Loss(_lora_target_loss, config, float(scale), int(num_target))

    def step(lora, opt_state, params, tokens, roles):
        (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(lora, params, tokens, roles)
        updates, opt_state = opt.update(grads, opt_state, lora)
        return optax.apply_updates(lora, updates), opt_state, loss

    return opt.init, step


def save_lora(path: str, lora: dict, *, scale: float, **info) -> None:
    """Writes the adapters (only A and B, float32) and a JSON header to an .npz file.

    Args:
      path: file name (".npz" is appended by NumPy when missing).
      scale: the LoRA scale the adapters were trained with (stored; `merge_lora_file` uses it).
      info: any JSON-serialisable notes (base model, data, steps) kept in the header.
    """
    header = {"scale": float(scale), "targets": sorted(lora), **info}
    arrays = {f"{name}.{ab}": np.asarray(lora[name][ab], np.float32)
              for name in lora for ab in ("a", "b")}
    np.savez(path, __header__=np.array(json.dumps(header)), **arrays)


def load_lora(path: str) -> tuple[dict, dict]:
    """(adapters, header) from a `save_lora` file; header["scale"] is the LoRA scale.

    Read by `lfx.lm.io.load_npz` (no Python objects).

    Raises:
      FileNotFoundError: no file.
      lfx.lm.io.ArtifactError: not an adapter file (a `.pkl`, corrupt, no header) or arrays missing
        (named in the message).
    """
    arrays = load_npz(path, "LoRA adapter file")
    if "__header__" not in arrays:
        raise ArtifactError(f"{path} has no __header__ entry; it is not a LoRA adapter file "
                            f"written by lfx.lm.save_lora.")
    try:
        header = json.loads(str(arrays["__header__"]))
        targets = list(header["targets"])
        float(header["scale"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ArtifactError(f"{path}: unreadable adapter header ({type(err).__name__}: {err}).") \
            from None
    needed = [f"{name}.{ab}" for name in targets for ab in ("a", "b")]
    missing = [k for k in needed if k not in arrays]
    if missing:
        raise ArtifactError(f"{path} lacks adapter arrays {missing} (its header lists targets "
                            f"{targets}); the file is incomplete -- save the adapters again.")
    lora = {name: {ab: jnp.asarray(arrays[f"{name}.{ab}"]) for ab in ("a", "b")}
            for name in targets}
    return lora, header


def merge_lora_file(params: dict, path: str) -> dict:
    """Base params with the adapters of a `save_lora` file merged (W + scale * A B).

    Raises:
      ValueError: the adapters do not fit the base model's weight shapes (another model).
    """
    lora, header = load_lora(path)
    for name, ab in lora.items():
        if name not in params["layers"]:
            raise ValueError(f"{path}: adapter for {name!r}, which the base model lacks.")
        L, d_in, d_out = params["layers"][name].shape
        if ab["a"].shape[:2] != (L, d_in) or ab["b"].shape[0] != L or ab["b"].shape[2] != d_out:
            raise ValueError(f"{path}: adapter {name} has A {ab['a'].shape}, B {ab['b'].shape}; "
                             f"the base weight is {params['layers'][name].shape} -- adapters "
                             f"from another model?")
    return lora_apply(params, lora, scale=header["scale"])


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """LoRA fine-tuning of SmolLM2 on teacher texts (experiments/evollm_finetune.py).

    texts_path: teacher_texts.json of experiments/evollm_teacher.py.
    holdout_chunk / holdout_every: example i is held out iff (i // chunk) % every == every - 1, so
      whole teacher runs are held out; eval_examples of them are scored before and after.
    rank, alpha, targets: the adapters (scale = alpha / rank).
    batch_size, num_steps: rows per Adam step, steps (rows walk a fixed permutation in order).
    init_adapters: continue from this adapters.npz (its step count offsets the data order).
    """

    texts_path: str = "runs/evollm_teacher_long/teacher_texts.json"
    holdout_chunk: int = 50
    holdout_every: int = 20
    eval_examples: int = 128
    rank: int = 8
    alpha: float = 16.0
    targets: str = "wq,wk,wv,wo"
    batch_size: int = 8
    num_steps: int = 400
    init_adapters: str = ""

    def validate(self) -> None:
        for name in ("holdout_chunk", "holdout_every", "eval_examples", "rank", "batch_size",
                     "num_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"config.{name} must be >= 1, got {getattr(self, name)}.")
        if not self.alpha > 0:
            raise ValueError(f"config.alpha must be > 0, got {self.alpha}.")
        unknown = sorted(set(self.targets.split(",")) - set(LORA_TARGETS))
        if unknown:
            raise ValueError(f"config.targets: unknown {unknown}; choose from {LORA_TARGETS}.")
