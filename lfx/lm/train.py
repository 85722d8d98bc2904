"""Next-token training of the Llama: masked cross-entropy and an Adam loop in one `lax.scan`.

`make_train(TrainConfig, loss_fn) -> TrainRecipe` is the loop in the shape every lfx family shares
(`init` / `run` / `train`, optimiser state and data key carried in `TrainState`), so
`lfx.experiment.run_chunked` checkpoints a long training and resumes it exactly; `train_lm` and
`lora.finetune_lora*` are one-call wrappers over it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import flax
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


def make_optimizer(lr, clip: float = 1.0) -> optax.GradientTransformation:
    """Adam (Kingma & Ba 2014, arXiv:1412.6980) after global-norm gradient clipping.

    The learning rate sits in the optimiser state (`optax.inject_hyperparams`), so a traced `lr`
    (a sweep, `vmap` over `HParams`) needs no recompilation; `update` reads it from the state.
    """
    return optax.chain(optax.clip_by_global_norm(clip),
                       optax.inject_hyperparams(optax.adam)(learning_rate=lr))


# ------------------------------------------------------------------ the training recipe
# Batches: "random" draws batch i ~ U{0..N-1} of `data["tokens"]` [N, B, T] (and `data["mask"]`)
# with the step's key; "sequential" takes rows `data["order"][(step * B + arange(B)) % M]` of
# `data["tokens"]` [R, T] / `data["mask"]` [R, T] (a fixed permutation walked in order).
BATCH_MODES = ("random", "sequential")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Static settings of an LM training run (shapes and loop lengths).

    num_steps: Adam updates in the whole run (the recipe's `num_updates`).
    batches: "random" or "sequential" (see `BATCH_MODES` above).
    batch_size: rows per step for "sequential" (for "random" the data's B).
    clip: global gradient-norm clip.
    """

    num_steps: int
    batches: str = "random"
    batch_size: int = 0
    clip: float = 1.0

    def validate(self) -> None:
        if self.num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {self.num_steps}.")
        if self.batches not in BATCH_MODES:
            raise ValueError(f"batches must be one of {BATCH_MODES}, got {self.batches!r}.")
        if self.batches == "sequential" and self.batch_size < 1:
            raise ValueError(f"sequential batches need batch_size >= 1, got {self.batch_size}.")


@flax.struct.dataclass
class HParams:
    """Traced floats of LM training (a batch of these is a sweep)."""

    lr: float = 3e-3

    def validate(self) -> None:
        if not float(self.lr) > 0:
            raise ValueError(f"HParams.lr must be > 0, got {self.lr}.")


@flax.struct.dataclass
class TrainState:
    trainable: Any  # the differentiated parameters (the model, or LoRA adapters)
    opt_state: Any
    step: jax.Array  # int32 [], updates done
    key: jax.Array  # the run's data key; step t uses split(key, num_steps)[t]


class TrainRecipe(NamedTuple):
    """`init(key, hparams, trainable, frozen, data)`, `run(state, hparams, trainable, frozen, data,
    *, num_updates)`, `train(...)`; metrics "train/loss", "train/accuracy" per update."""

    config: TrainConfig
    num_updates: int
    init: Callable
    run: Callable
    train: Callable


def _batch(config: TrainConfig, data: dict, step: jax.Array, key: jax.Array):
    data = {k: jnp.asarray(v) for k, v in data.items()}
    if config.batches == "random":
        i = jax.random.randint(key, (), 0, data["tokens"].shape[0])
        return data["tokens"][i], data["mask"][i]
    order = data["order"]
    rows = order[(step * config.batch_size + jnp.arange(config.batch_size)) % order.shape[0]]
    return data["tokens"][rows], data["mask"][rows]


def make_train(config: TrainConfig, loss_fn: Callable) -> TrainRecipe:
    """The Adam training loop as a recipe the harness can chunk, checkpoint and resume exactly.

    Args:
      config: static settings.
      loss_fn: `(trainable, frozen, tokens [B, T], mask [B, T]) -> (loss, metrics)`.

    Returns:
      A `TrainRecipe`. `init(key, hparams, trainable, frozen, data)` ignores `trainable`'s origin
      (the caller builds it) and stores `key` as the data key; every chunk of `run` continues the
      same stream (step t's key is `split(key, num_steps)[t]`), so chunked == one scan, bitwise.
    """
    config.validate()

    def init(key, hparams, trainable, frozen, data):
        del frozen, data
        opt = make_optimizer(hparams.lr, config.clip)
        return TrainState(trainable=trainable, opt_state=opt.init(trainable),
                          step=jnp.zeros((), jnp.int32), key=key)

    def run(state, hparams, trainable, frozen, data, *, num_updates):
        del trainable
        opt = make_optimizer(hparams.lr, config.clip)  # lr is read from opt_state

        def body(state, _):
            key_t = jax.random.split(state.key, config.num_steps)[state.step]
            tokens, mask = _batch(config, data, state.step, key_t)
            (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                state.trainable, frozen, tokens, mask)
            updates, opt_state = opt.update(grads, state.opt_state, state.trainable)
            new = TrainState(trainable=optax.apply_updates(state.trainable, updates),
                             opt_state=opt_state, step=state.step + 1, key=state.key)
            metrics = {"train/loss": loss, "train/accuracy": aux.get("train/accuracy", loss * 0)}
            return new, metrics

        return jax.lax.scan(body, state, None, length=num_updates)

    def train(key, hparams, trainable, frozen, data):
        state = init(key, hparams, trainable, frozen, data)
        return run(state, hparams, trainable, frozen, data, num_updates=config.num_steps)

    return TrainRecipe(config, config.num_steps, init, run, train)


def chunk_functions(recipe: TrainRecipe, key: jax.Array, hparams: HParams, trainable, frozen,
                    data: dict):
    """`(init, run)` of ONE training run for `lfx.experiment.run_chunked`, jitted.

    Unlike `lfx.experiment.recipe_functions` (which vmaps over settings x seeds), this is one
    unbatched run; as there, the frozen model and the data are jit ARGUMENTS (a 135M-parameter
    base model is not folded into the program as a constant). Metrics come back `[n]`.
    """
    init_j = jax.jit(recipe.init)
    run_j = jax.jit(recipe.run, static_argnames="num_updates")

    def init():
        return init_j(key, hparams, trainable, frozen, data)

    def run(state, n):
        return run_j(state, hparams, trainable, frozen, data, num_updates=n)

    return init, run


@functools.partial(jax.jit, static_argnames=("loss_fn", "num_steps"))
def _fit(trainable, frozen, tokens, mask, key, lr, *, loss_fn, num_steps):
    recipe = make_train(TrainConfig(num_steps=num_steps), loss_fn)
    state, metrics = recipe.train(key, HParams(lr=lr), trainable, frozen,
                                  {"tokens": tokens, "mask": mask})
    return state.trainable, metrics["train/loss"]


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


def next_token_loss(config: LlamaConfig) -> Callable:
    """`loss_fn(params, frozen, tokens, mask)` of `lm_loss` for `make_train` (hashable)."""
    return _Loss(_full_loss, config)


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
    params, losses = _fit(params, None, tokens, mask, key, jnp.float32(lr),
                          loss_fn=_Loss(_full_loss, config), num_steps=int(num_steps))
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
    logits, targets, m = target_logits(params, config, tokens, roles, num_target=num_target)
    return _masked_nll(logits, targets, m)


def target_hidden(params: dict, config: LlamaConfig, tokens: jax.Array, roles: jax.Array, *,
                  num_target: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Final hidden states (before the final norm) that predict the last K = num_target columns
    of left-padded prompt -> target rows.

    Args:
      params, config: the model.
      tokens: int32 [B, T] rows from `encode_prompt_target`; roles: int [B, T] PAD/PROMPT/TARGET.
      num_target: K, static, 1 <= K < T; every TARGET must lie in the last K columns.
    Returns:
      (hidden [B, K, D] at the positions predicting tokens[:, T-K:], those targets int32 [B, K],
      the target mask float32 [B, K] = [roles == TARGET]).
    """
    T = tokens.shape[1]
    if not 1 <= num_target < T:
        raise ValueError(f"num_target must be in [1, {T - 1}], got {num_target}.")
    valid = roles > PAD
    positions = jnp.maximum(jnp.cumsum(valid, axis=1) - 1, 0).astype(jnp.int32)
    h, _ = forward_hidden(params, config, tokens[:, :-1], positions[:, :-1], mask=valid[:, :-1])
    targets = tokens[:, -num_target:]
    m = (roles[:, -num_target:] == TARGET).astype(jnp.float32)
    return h[:, -num_target:], targets, m


def target_logits(params: dict, config: LlamaConfig, tokens: jax.Array, roles: jax.Array, *,
                  num_target: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`target_hidden` projected to the vocabulary: (logits float32 [B, K, V], targets [B, K],
    mask [B, K])."""
    h, targets, m = target_hidden(params, config, tokens, roles, num_target=num_target)
    return output_logits(params, config, h), targets, m
