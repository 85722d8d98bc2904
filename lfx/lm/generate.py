"""Batched generation: one prefill of left-padded prompts, then a KV-cache decode loop, optionally
constrained by a token-level finite-state machine (grammar-constrained decoding).

Constrained decoding as in Willard & Louf 2023, "Efficient Guided Generation for Large Language
Models" (arXiv:2307.09702): a regular grammar compiled to an automaton over token ids; at each step
the logits of tokens with no transition from the row's state are set to -inf.

`generate` is jitted (it is the point of this module): the prompt length is padded up to a bucket
(multiple of `PROMPT_BUCKET`) so that prompts of similar lengths share one compiled program, and
the decode loop is a `lax.while_loop` that stops as soon as every row has finished.
"""

from __future__ import annotations

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np

from lfx.lm.config import LlamaConfig
from lfx.lm.llama import forward_hidden, init_cache, rms_norm

PROMPT_BUCKET = 32


@flax.struct.dataclass
class TokenFSM:
    """A deterministic automaton over token ids.

    Attributes:
      transitions: int32 [S, V], next state after emitting a token, or -1 (token forbidden).
      start: int32 scalar (or [B] per row), the state before the first generated token.
      final: bool [S]; a row stops as soon as it enters a final state.
    """

    transitions: jax.Array
    start: jax.Array
    final: jax.Array


def fsm_allowed(fsm: TokenFSM, tokens: jax.Array) -> jax.Array:
    """Which tokens the automaton allows at each step of generated responses.

    allowed[b, t, v] = transitions[s_bt, v] >= 0, where s_b0 = start and s_b,t+1 =
    transitions[s_bt, tokens[b, t]] (a token with no transition -- eos, padding -- leaves the
    state as it is). The constrained sampler of `generate` draws token t from
    softmax(logits masked to allowed[b, t]): the log-probabilities of that policy are those of
    the masked logits (`lfx.pref.rlhf`).

    Args:
      fsm: a `TokenFSM` over the vocabulary (transitions [S, V]).
      tokens: int32 [B, K], the responses (the tokens after the prompt).
    Returns:
      bool [B, K, V].
    """
    trans = jnp.asarray(fsm.transitions, jnp.int32)
    B = tokens.shape[0]

    def step(state, tok):
        nxt = trans[state, tok]
        return jnp.where(nxt >= 0, nxt, state), trans[state] >= 0

    start = jnp.broadcast_to(jnp.asarray(fsm.start, jnp.int32), (B,))
    _, allowed = jax.lax.scan(step, start, jnp.asarray(tokens, jnp.int32).T)
    return jnp.swapaxes(allowed, 0, 1)


def _bucket(n: int, bucket: int) -> int:
    return max(bucket, -(-n // bucket) * bucket)


@functools.partial(jax.jit, static_argnames=("config", "max_new_tokens", "greedy", "eos_id",
                                             "pad_id"))
def _generate(params, prompt_ids, prompt_lengths, key, temperature, fsm, vocab_ids, *, config,
              max_new_tokens, greedy, eos_id, pad_id):
    """vocab_ids: None, or int32 [K]: logits are computed only for these ids (the FSM's
    transitions then arrive restricted to these columns, [S, K])."""
    B, P = prompt_ids.shape
    dtype = params["embed"].dtype
    col = jnp.arange(P, dtype=jnp.int32)
    offset = (P - prompt_lengths).astype(jnp.int32)
    prompt_mask = col[None, :] >= offset[:, None]
    positions = jnp.maximum(col[None, :] - offset[:, None], 0)
    if config.tie_embeddings:
        head = params["embed"]
    else:
        head = params["lm_head"].T
    if vocab_ids is not None:
        head = head[vocab_ids]

    def logits_of(h):
        x = rms_norm(h[:, -1, :], params["final_norm"], config.norm_eps)
        return jnp.einsum("bd,vd->bv", x, head, preferred_element_type=jnp.float32)

    cache = init_cache(config, B, P + max_new_tokens, dtype)
    h, cache = forward_hidden(params, config, prompt_ids, positions, cache, mask=prompt_mask)
    # A row with an empty prompt has no token to predict from; callers must not pass one.
    last = logits_of(h)

    if fsm is not None:
        state0 = jnp.broadcast_to(jnp.asarray(fsm.start, jnp.int32), (B,))
    else:
        state0 = jnp.zeros((B,), jnp.int32)

    def choose(logits, state, key):
        if fsm is not None:
            allowed = fsm.transitions[state] >= 0
            stuck = ~jnp.any(allowed, axis=-1)
            logits = jnp.where(allowed, logits, -jnp.inf)
        else:
            stuck = jnp.zeros((B,), bool)
        if greedy:
            k = jnp.argmax(logits, axis=-1)
        else:
            k = jax.random.categorical(key, logits / temperature, axis=-1)
        tok = k if vocab_ids is None else vocab_ids[k]
        tok = jnp.where(stuck, eos_id, tok).astype(jnp.int32)
        if fsm is not None:
            nxt = jnp.where(stuck, state, fsm.transitions[state, k])
            ends = stuck | fsm.final[nxt] | (tok == eos_id)
        else:
            nxt = state
            ends = tok == eos_id
        return tok, nxt, ends

    def cond(carry):
        step, done = carry[0], carry[1]
        return (step < max_new_tokens) & ~jnp.all(done)

    def body(carry):
        step, done, state, out, lengths, last, cache, key = carry
        key, sub = jax.random.split(key)
        tok, nxt, ends = choose(last, state, sub)
        emit = ~done & (tok != eos_id)
        out = out.at[:, step].set(jnp.where(emit, tok, pad_id))
        lengths = lengths + emit.astype(jnp.int32)
        state = jnp.where(done, state, nxt)
        done = done | ends

        def advance(cache):
            pos = (prompt_lengths + step)[:, None]
            h, cache = forward_hidden(params, config, tok[:, None], pos, cache,
                                      mask=~done[:, None])
            return logits_of(h), cache

        need = (step + 1 < max_new_tokens) & ~jnp.all(done)
        last, cache = jax.lax.cond(need, advance, lambda c: (last, c), cache)
        return step + 1, done, state, out, lengths, last, cache, key

    carry = (jnp.zeros((), jnp.int32), jnp.zeros((B,), bool), state0,
             jnp.full((B, max_new_tokens), pad_id, jnp.int32), jnp.zeros((B,), jnp.int32),
             last, cache, key)
    carry = jax.lax.while_loop(cond, body, carry)
    return carry[3], carry[4]


def _restrict(fsm: TokenFSM, bucket: int = 64):
    """Columns of the FSM that are ever allowed, padded to a multiple of `bucket` with
    never-allowed columns: (restricted FSM [S, K], ids [K]); (fsm, None) when traced."""
    if isinstance(fsm.transitions, jax.core.Tracer):
        return fsm, None
    trans = np.asarray(fsm.transitions)
    ids = np.nonzero((trans >= 0).any(axis=0))[0].astype(np.int32)
    K = _bucket(max(len(ids), 1), bucket)
    if K >= trans.shape[1]:
        return fsm, None
    sub = np.full((trans.shape[0], K), -1, np.int32)
    sub[:, :len(ids)] = trans[:, ids]
    ids = np.concatenate([ids, np.zeros(K - len(ids), np.int32)])
    return TokenFSM(transitions=jnp.asarray(sub), start=fsm.start, final=fsm.final), \
        jnp.asarray(ids)


def generate(params: dict, config: LlamaConfig, prompt_ids, prompt_lengths, *, key: jax.Array,
             max_new_tokens: int, temperature: float = 0.0, fsm: TokenFSM | None = None,
             eos_id: int = 2, pad_id: int = 2, bucket: int = PROMPT_BUCKET):
    """Generates up to `max_new_tokens` tokens for every row of a left-padded prompt batch.

    Greedy at temperature 0, otherwise samples softmax(logits / temperature). With `fsm`, token
    x is allowed in state s iff transitions[s, x] >= 0 (so eos is allowed only where the FSM
    allows it); a row stops when it emits eos or enters a final state. A state with no allowed
    token ends the row (eos is forced). Rows that stopped are padded with `pad_id`.

    Args:
      params, config: the model (`load_smollm2` or `init_params`); params' dtype is the compute
        dtype.
      prompt_ids: int32 [B, P], row b's prompt in its last prompt_lengths[b] columns (LEFT-padded
        with pad_id). P is padded up to a multiple of `bucket` here, so nearby prompt lengths
        reuse one compiled program.
      prompt_lengths: int32 [B], >= 1.
      key: typed PRNG key (unused when greedy).
      max_new_tokens: static number of decode steps.
      temperature: 0 for greedy decoding.
      fsm: optional `TokenFSM` over this vocabulary.
      eos_id, pad_id: the tokenizer's ids (SmolLM2: both 2, <|im_end|>).
    Returns:
      (tokens int32 [B, max_new_tokens], lengths int32 [B]): tokens[b, :lengths[b]] are the
      generated ids (eos excluded; the token entering a final FSM state included).
    """
    prompt_ids = jnp.asarray(prompt_ids, jnp.int32)
    prompt_lengths = jnp.asarray(prompt_lengths, jnp.int32)
    if prompt_ids.ndim != 2 or prompt_lengths.shape != prompt_ids.shape[:1]:
        raise ValueError(f"prompt_ids must be [B, P] and prompt_lengths [B]; got "
                         f"{prompt_ids.shape} and {prompt_lengths.shape}.")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}.")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}.")
    B, P = prompt_ids.shape
    P2 = _bucket(P, bucket)
    if P2 + max_new_tokens > config.max_seq_len:
        raise ValueError(f"Prompt ({P}, bucketed to {P2}) + max_new_tokens ({max_new_tokens}) "
                         f"exceeds config.max_seq_len ({config.max_seq_len}); shorten the prompt.")
    if P2 > P:
        prompt_ids = jnp.pad(prompt_ids, ((0, 0), (P2 - P, 0)), constant_values=pad_id)
    if fsm is not None:
        if fsm.transitions.shape[-1] != config.vocab_size:
            raise ValueError(f"fsm.transitions must be [S, {config.vocab_size}] (one column per "
                             f"token id), got {fsm.transitions.shape}.")
        fsm = TokenFSM(transitions=jnp.asarray(fsm.transitions, jnp.int32),
                       start=jnp.asarray(fsm.start, jnp.int32),
                       final=jnp.asarray(fsm.final, bool))
        fsm, vocab_ids = _restrict(fsm)
    else:
        vocab_ids = None
    greedy = float(temperature) == 0.0
    return _generate(params, prompt_ids, prompt_lengths, key,
                     jnp.asarray(temperature if not greedy else 1.0, jnp.float32), fsm, vocab_ids,
                     config=config, max_new_tokens=int(max_new_tokens), greedy=greedy,
                     eos_id=int(eos_id), pad_id=int(pad_id))


def left_pad(sequences: list[list[int]], pad_id: int, length: int | None = None):
    """Left-pads token lists into (ids int32 [B, P], lengths int32 [B]) numpy arrays."""
    lengths = np.array([len(s) for s in sequences], np.int32)
    P = int(lengths.max()) if length is None else int(length)
    if lengths.max() > P:
        raise ValueError(f"A sequence of length {lengths.max()} does not fit length={P}.")
    ids = np.full((len(sequences), P), pad_id, np.int32)
    for b, s in enumerate(sequences):
        if len(s):
            ids[b, P - len(s):] = s
    return ids, lengths
