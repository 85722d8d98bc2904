"""Next-token training of the Llama: masked cross-entropy and an Adam loop in one `lax.scan`."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lfx.lm.config import LlamaConfig
from lfx.lm.llama import forward, forward_hidden, output_logits


def _masked_nll(logits: jax.Array, targets: jax.Array, m: jax.Array) -> tuple[jax.Array, dict]:
    """Mean next-token NLL and accuracy over positions with m = 1. logits [B, T, V]; targets, m [B, T]."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    denom = jnp.maximum(m.sum(), 1.0)
    loss = (nll * m).sum() / denom
    acc = ((jnp.argmax(logits, -1) == targets) * m).sum() / denom
    return loss, {"train/loss": loss, "train/accuracy": acc}


def lm_loss(params: dict, config: LlamaConfig, tokens: jax.Array,
            mask: jax.Array | None = None) -> tuple[jax.Array, dict]:
    """Mean next-token cross-entropy, -sum_t m_t log p(x_t | x_<t) / sum_t m_t.

    Args:
      params: model parameters (differentiated).
      tokens: int32 [B, T], right-padded sequences.
      mask: [B, T] bool/float, weight of token t as a prediction target (position 0 is never a
        target); default all ones.
    Returns:
      (loss, {"train/loss", "train/accuracy"}).
    """
    logits, _ = forward(params, config, tokens[:, :-1])
    targets = tokens[:, 1:]
    m = jnp.ones(targets.shape, jnp.float32) if mask is None else mask[:, 1:].astype(jnp.float32)
    return _masked_nll(logits, targets, m)


def _as_batches(token_batches, mask, pad_id):
    tokens = jnp.asarray(token_batches, jnp.int32)
    if tokens.ndim == 2:
        tokens = tokens[None]
    if tokens.ndim != 3:
        raise ValueError(f"token_batches must be int [N, B, T] (or one batch [B, T]), got shape "
                         f"{tokens.shape}.")
    if mask is None:
        mask = jnp.ones(tokens.shape, bool) if pad_id is None else tokens != pad_id
    else:
        mask = jnp.asarray(mask).reshape(tokens.shape)
    return tokens, mask


def make_optimizer(lr: float, clip: float = 1.0) -> optax.GradientTransformation:
    """Adam (Kingma & Ba 2014, arXiv:1412.6980) after global-norm gradient clipping."""
    return optax.chain(optax.clip_by_global_norm(clip), optax.adam(lr))


@functools.partial(jax.jit, static_argnames=("loss_fn", "num_steps", "lr"))
def _fit(trainable, frozen, tokens, mask, key, *, loss_fn, num_steps, lr):
    opt = make_optimizer(lr)
    opt_state = opt.init(trainable)
    n = tokens.shape[0]

    def step(carry, key):
        trainable, opt_state = carry
        i = jax.random.randint(key, (), 0, n)
        (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            trainable, frozen, tokens[i], mask[i])
        updates, opt_state = opt.update(grads, opt_state, trainable)
        return (optax.apply_updates(trainable, updates), opt_state), loss

    (trainable, _), losses = jax.lax.scan(step, (trainable, opt_state),
                                          jax.random.split(key, num_steps))
    return trainable, losses


class _Loss:
    """Hashable loss (a static jit argument): (trainable, frozen, tokens, mask) -> (loss, aux)."""

    def __init__(self, fn, *static):
        self.fn, self.static = fn, static

    def __call__(self, trainable, frozen, tokens, mask):
        return self.fn(trainable, frozen, tokens, mask, *self.static)

    def __hash__(self):
        return hash((self.fn, self.static))

    def __eq__(self, other):
        return isinstance(other, _Loss) and (self.fn, self.static) == (other.fn, other.static)


def _full_loss(params, frozen, tokens, mask, config):
    del frozen
    return lm_loss(params, config, tokens, mask)


def train_lm(params: dict, config: LlamaConfig, token_batches, *, lr: float, num_steps: int,
             key: jax.Array, mask=None, pad_id: int | None = 0, return_losses: bool = False):
    """Trains every parameter with Adam on next-token cross-entropy (one jitted `lax.scan`).

    Each step draws one batch uniformly (with `key`) from `token_batches`.

    Args:
      params: initial parameters (`init_params`).
      token_batches: int [N, B, T] (or [B, T]) right-padded token ids.
      lr: Adam learning rate; num_steps: number of updates.
      mask: optional [N, B, T] target weights; default `tokens != pad_id` (CharTokenizer pads
        with 0); pad_id=None weights every token.
      return_losses: also return the [num_steps] training losses.
    Returns:
      trained params (and losses).
    """
    if num_steps < 1 or lr <= 0:
        raise ValueError(f"train_lm needs num_steps >= 1 and lr > 0, got {num_steps}, {lr}.")
    tokens, mask = _as_batches(token_batches, mask, pad_id)
    params, losses = _fit(params, None, tokens, mask, key, loss_fn=_Loss(_full_loss, config),
                          num_steps=int(num_steps), lr=float(lr))
    return (params, losses) if return_losses else params


# ------------------------------------------------------------------ prompt -> target fine-tuning
# Rows are LEFT-padded, as `generate` pads its prompts, so a row's tokens sit at the same rotary
# positions (0 at its first real token) in training as at inference, and every target ends at the
# last column: the loss needs output logits for the last few columns only (the 49152-wide output
# projection is ~20 % of SmolLM2's forward cost).
PAD, PROMPT, TARGET = 0, 1, 2


def encode_prompt_target(tokenizer, prompts: list[str], targets: list[str], length: int,
                         pad_id: int | None = None):
    """(prompt, target) texts -> left-padded token ids and roles, both int32 [N, length].

    Prompt and target are encoded separately and concatenated, so the target's tokens are the
    ones `generate` would emit after the prompt. A prompt too long for `length` loses its first
    tokens (the most recent context lines survive).

    Args:
      tokenizer: has `encode(text) -> list[int]` and `pad_id`.
      prompts, targets: N texts each.
      length: T, columns per row.
      pad_id: id written into padding (default tokenizer.pad_id; never attended to or scored).
    Returns:
      (ids [N, T], roles [N, T]) with roles PAD = 0, PROMPT = 1, TARGET = 2.
    Raises:
      ValueError: a target (plus one prompt token) does not fit in `length`.
    """
    if len(prompts) != len(targets):
        raise ValueError(f"{len(prompts)} prompts but {len(targets)} targets.")
    pad = tokenizer.pad_id if pad_id is None else pad_id
    ids = np.full((len(prompts), length), pad, np.int32)
    roles = np.full((len(prompts), length), PAD, np.int32)
    for i, (p, t) in enumerate(zip(prompts, targets)):
        tt = tokenizer.encode(t)
        if not tt or len(tt) + 1 > length:
            raise ValueError(f"Target {t!r} is {len(tt)} tokens; it needs 1..{length - 1} "
                             f"(raise the sequence length).")
        pt = tokenizer.encode(p)[-(length - len(tt)):]
        row = pt + tt
        ids[i, length - len(row):] = row
        roles[i, length - len(row):] = [PROMPT] * len(pt) + [TARGET] * len(tt)
    return ids, roles


def target_loss(params: dict, config: LlamaConfig, tokens: jax.Array, roles: jax.Array, *,
                num_target: int) -> tuple[jax.Array, dict]:
    """Cross-entropy on target tokens only, -sum_t [r_t = TARGET] log p(x_t | x_<t) / #targets.

    Prompt tokens are context (attended to, not scored); padding is neither.

    Args:
      params: model parameters (differentiated).
      tokens: int32 [B, T] left-padded rows from `encode_prompt_target`.
      roles: int [B, T] PAD / PROMPT / TARGET; every TARGET must lie in the last `num_target`
        columns (true for `encode_prompt_target` rows when num_target >= the longest target).
      num_target: K, static; logits are computed for the last K columns only.
    Returns:
      (loss, {"train/loss", "train/accuracy"}), accuracy = greedy next-token hits on targets.
    """
    T = tokens.shape[1]
    if not 1 <= num_target < T:
        raise ValueError(f"num_target must be in [1, {T - 1}], got {num_target}.")
    valid = roles > PAD
    positions = jnp.maximum(jnp.cumsum(valid, axis=1) - 1, 0).astype(jnp.int32)
    h, _ = forward_hidden(params, config, tokens[:, :-1], positions[:, :-1], mask=valid[:, :-1])
    logits = output_logits(params, config, h[:, -num_target:])
    targets = tokens[:, -num_target:]
    m = (roles[:, -num_target:] == TARGET).astype(jnp.float32)
    return _masked_nll(logits, targets, m)
