"""Low-rank adaptation of the Llama's linear layers (Hu et al. 2021, "LoRA", arXiv:2106.09685).

W' = W + scale * A B with A [in, r] ~ N(0, 1/in) and B [r, out] = 0, so a fresh adapter leaves the
model unchanged. Adapters are a dict {weight name: {"a": [L, in, r], "b": [L, r, out]}} over the
stacked layer weights; `lora_apply` merges them (the merged forward is `forward(lora_apply(...))`,
and gradients reach only A and B).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from lfx.lm.config import LlamaConfig
from lfx.lm.train import _as_batches, _fit, _Loss, lm_loss

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
    lora, losses = _fit(lora, params, tokens, mask, key,
                        loss_fn=_Loss(_lora_loss, config, float(scale)),
                        num_steps=int(num_steps), lr=float(lr))
    return (lora, losses) if return_losses else lora
