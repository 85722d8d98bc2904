"""A character-level random bigram LM with lfx.lm's generation API: a test double and offline fallback.

It exists so EvoLLM can be tested without SmolLM2 (and before/without `lfx.lm`): same tokenizer
methods (`encode`, `decode`, `token_strings`, `eos_id`, `pad_id`) and the same
`generate(params, config, prompt_ids, prompt_lengths, *, key, max_new_tokens, temperature, fsm)`
contract, with FSM-masked decoding: at each step logits of tokens with `fsm.transitions[s, t] < 0`
are set to -inf; rows stop (emit pad) once in a final state. It is NOT a language model of numbers:
logits[t_prev] is a random table, so its proposals are a random walk through the grammar.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class TokenFSM(NamedTuple):
    """Same fields as `lfx.lm.TokenFSM`: transitions int32 [S, V] (-1 forbidden), start, final [S]."""

    transitions: jax.Array
    start: int
    final: jax.Array


class ToyCharTokenizer:
    """One token per character of `alphabet`, plus pad (id 0) and eos (id 1)."""

    def __init__(self, alphabet: str = "0123456789-,:;\n fx="):
        self.chars = ["<pad>", "<eos>"] + list(dict.fromkeys(alphabet))
        self.pad_id, self.eos_id = 0, 1
        self._ids = {c: i for i, c in enumerate(self.chars) if i >= 2}

    def encode(self, text: str) -> list[int]:
        return [self._ids[c] for c in text]

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids if int(i) >= 2)

    def token_strings(self) -> list[str]:
        return ["", ""] + self.chars[2:]


class ToyConfig(NamedTuple):
    vocab_size: int


def init_toy_lm(key: jax.Array, tokenizer: ToyCharTokenizer, scale: float = 3.0):
    """(params: bigram logits [V, V], config)."""
    vocab = len(tokenizer.chars)
    return scale * jax.random.normal(key, (vocab, vocab)), ToyConfig(vocab)


def generate(params, config, prompt_ids, prompt_lengths, *, key, max_new_tokens, temperature=0.0, fsm=None,
             eos_id=1, pad_id=0):
    """[B, P] left-padded prompts -> (tokens [B, max_new_tokens], lengths [B]); see module doc."""
    batch = prompt_ids.shape[0]
    last = prompt_ids[:, -1]
    state0 = jnp.full((batch,), 0 if fsm is None else fsm.start, jnp.int32)
    trans = None if fsm is None else jnp.asarray(fsm.transitions)
    final = None if fsm is None else jnp.asarray(fsm.final)

    def step(carry, key_t):
        prev, state, done, length = carry
        logits = params[prev]
        if trans is not None:
            allowed = trans[state] >= 0
            logits = jnp.where(allowed, logits, -jnp.inf)
        if temperature > 0:
            tok = jax.random.categorical(key_t, logits / temperature)
        else:
            tok = jnp.argmax(logits, axis=-1)
        tok = jnp.where(done, 0, tok).astype(jnp.int32)
        new_state = state if trans is None else jnp.where(done, state, trans[state, tok])
        new_done = done | (tok == 1) if trans is None else done | final[new_state]
        length = length + (~done).astype(jnp.int32)
        return (tok, new_state, new_done, length), tok

    carry = (last, state0, jnp.zeros(batch, bool), jnp.zeros(batch, jnp.int32))
    (_, _, _, lengths), toks = jax.lax.scan(step, carry, jax.random.split(key, max_new_tokens))
    return toks.T, lengths


generate = jax.jit(
    generate, static_argnames=("config", "max_new_tokens", "temperature", "eos_id", "pad_id")
)
