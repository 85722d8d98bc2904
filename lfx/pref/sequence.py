"""Sequence log-probabilities of responses: the quantity every preference objective is a function of.

A preference row is a prompt followed by a response, LEFT-padded as `lfx.lm.encode_prompt_target`
lays it out (so the response ends in the last column and sits at the rotary positions `generate`
gives it); roles mark PAD / PROMPT / TARGET (= response) tokens. For a response y to prompt x,

    log pi(y | x) = sum_t m_t log pi(y_t | x, y_<t)          ("sum", what DPO uses)
    mean log pi   = log pi(y | x) / sum_t m_t                  ("mean", SimPO / ORPO / IPO in TRL)

with m_t = 1 on response tokens. Where responses were sampled under a token automaton (a task's
`TokenFSM`), `constrained_logits` gives the logits of the distribution actually sampled from.
Only the last K = num_target columns get output logits (the response must fit in them), as in
`lfx.lm.train.target_loss`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from lfx.lm.config import LlamaConfig
from lfx.lm.generate import fsm_allowed
from lfx.lm.train import target_logits


class SequenceLogps(NamedTuple):
    """Per-row log-probabilities of the response. All float32 [B] except `token` [B, K]."""

    sum: jax.Array  # sum_t m_t log pi(y_t | ...)
    mean: jax.Array  # sum / max(1, sum_t m_t)
    count: jax.Array  # sum_t m_t, the response length in tokens
    token: jax.Array  # [B, K] m_t log pi(y_t | ...), 0 off the response


def sequence_logps(logits: jax.Array, labels: jax.Array, mask: jax.Array) -> SequenceLogps:
    """Log-probabilities of `labels` under `logits`, summed and averaged over `mask`.

    Args:
      logits: float [B, T, V], logits[b, t] predicts labels[b, t] (already shifted).
      labels: int [B, T].
      mask: [B, T] bool/float, 1 on the tokens that count.
    Returns:
      `SequenceLogps` (sum, mean, count [B]; token [B, T]).
    """
    if logits.shape[:2] != labels.shape or labels.shape != mask.shape:
        raise ValueError(f"logits [B, T, V], labels [B, T] and mask [B, T] must agree; got "
                         f"{logits.shape}, {labels.shape}, {mask.shape}.")
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    m = mask.astype(jnp.float32)
    token = jnp.take_along_axis(logp, labels[..., None].astype(jnp.int32), axis=-1)[..., 0] * m
    count = m.sum(-1)
    total = token.sum(-1)
    return SequenceLogps(sum=total, mean=total / jnp.maximum(count, 1.0), count=count, token=token)


def response_logps(params: dict, config: LlamaConfig, tokens: jax.Array, roles: jax.Array, *,
                   num_target: int) -> SequenceLogps:
    """`sequence_logps` of each row's response under the model `params`.

    Args:
      params, config: the model (a LoRA policy passes `lora_apply(base, adapters)`).
      tokens: int32 [B, T] left-padded prompt + response rows; roles: int [B, T] (PAD 0,
        PROMPT 1, TARGET 2 as `lfx.lm.encode_prompt_target`).
      num_target: K, static; every response token lies in the last K columns.
    Returns:
      `SequenceLogps` with token [B, K].
    """
    logits, targets, m = target_logits(params, config, tokens, roles, num_target=num_target)
    return sequence_logps(logits, targets, m)


def token_kl(policy_logits: jax.Array, reference_logits: jax.Array, mask: jax.Array) -> jax.Array:
    """TDPO's per-position KL(pi_ref || pi) = sum_v p_ref(v) (log p_ref(v) - log p(v)), times mask:
    logits float [B, K, V] (predicting the response tokens), mask [B, K] -> float32 [B, K] (>= 0).
    The reference side carries no gradient."""
    lp = jax.nn.log_softmax(policy_logits.astype(jnp.float32), -1)
    lr = jax.lax.stop_gradient(jax.nn.log_softmax(reference_logits.astype(jnp.float32), -1))
    return jnp.sum(jnp.exp(lr) * (lr - lp), -1) * mask.astype(jnp.float32)


def constrained_logits(logits: jax.Array, fsm, targets: jax.Array, mask: jax.Array, *,
                       eos_id: int = 2) -> jax.Array:
    """The logits of the distribution the task's sampler draws from: tokens the FSM forbids at a
    response position set to -inf. Every token off the response stays allowed, and eos where it
    is the row's token (a response that stopped early ends in eos), so no scored or padded
    position is -inf. logits [B, K, V], targets / mask [B, K]; no FSM: as is.

    Without it a policy lowers log pi(y_t) of every sampled token -- and so its KL penalty -- by
    moving mass onto tokens the sampler never emits (measured: PPO on task (a) at kl_coef 0.05
    put most of its mass on eos and reached an evaluation "KL" of -262)."""
    if fsm is None:
        return logits
    V = logits.shape[-1]
    allowed = fsm_allowed(fsm, targets) | (mask[..., None] == 0)
    allowed = allowed | ((targets == eos_id)[..., None] & (jnp.arange(V) == eos_id))
    return jnp.where(allowed, logits, -jnp.inf)
