"""lfx.lm.generate: greedy decoding equals an argmax loop; FSM-constrained outputs are accepted."""

import jax
import jax.numpy as jnp
import numpy as np

from lfx.lm import TokenFSM, forward, generate, init_params, left_pad, tiny_config

CFG = tiny_config(24, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=48)
EOS = 2


def _next_logits(params, config, seq, width=32):
    """Logits after `seq` from a no-cache forward over a fixed-width buffer (causal, so the
    trailing filler cannot matter; one compiled shape)."""
    buf = np.zeros((1, width), np.int32)
    buf[0, :len(seq)] = seq
    logits = _FWD(params, config, jnp.asarray(buf))
    return np.asarray(logits[0, len(seq) - 1]).copy()


_FWD = jax.jit(lambda p, c, t: forward(p, c, t)[0], static_argnums=1)


def _greedy_reference(params, prompt, n):
    """Full forward (no cache) on the growing sequence, argmax each time, stop at eos."""
    seq = list(prompt)
    out = []
    for _ in range(n):
        tok = int(np.argmax(_next_logits(params, CFG, seq)))
        if tok == EOS:
            break
        out.append(tok)
        seq.append(tok)
    return out


def test_greedy_generate_equals_argmax_loop_for_left_padded_batch():
    params = init_params(jax.random.key(0), CFG)
    rng = np.random.default_rng(0)
    prompts = [list(rng.integers(3, CFG.vocab_size, size=n)) for n in (5, 1, 9)]
    ids, lengths = left_pad(prompts, pad_id=0)
    tokens, n = generate(params, CFG, ids, lengths, key=jax.random.key(1), max_new_tokens=8)
    for b, prompt in enumerate(prompts):
        ref = _greedy_reference(params, prompt, 8)
        assert list(np.asarray(tokens[b, :int(n[b])])) == ref
        assert np.all(np.asarray(tokens[b, int(n[b]):]) == EOS)  # padded with pad_id (= 2)


def _random_fsm(rng, n_states, vocab):
    trans = np.where(rng.random((n_states, vocab)) < 0.3,
                     rng.integers(0, n_states, (n_states, vocab)), -1).astype(np.int32)
    final = np.zeros(n_states, bool)
    final[-2:] = True
    for s in range(n_states):  # every state keeps at least one allowed token
        if not (trans[s] >= 0).any():
            trans[s, rng.integers(0, vocab)] = rng.integers(0, n_states)
    return TokenFSM(transitions=jnp.asarray(trans), start=0, final=jnp.asarray(final)), trans, \
        final


def test_fsm_constrained_sampling_is_always_accepted():
    rng = np.random.default_rng(1)
    for trial in range(3):
        params = init_params(jax.random.key(trial), CFG)
        fsm, trans, final = _random_fsm(rng, 7, CFG.vocab_size)
        ids = rng.integers(3, CFG.vocab_size, size=(5, 4)).astype(np.int32)
        lengths = np.array([4, 2, 3, 4, 1], np.int32)
        for temperature in (0.0, 1.5):
            max_new = 10
            tokens, n = generate(params, CFG, ids, lengths, key=jax.random.key(10 + trial),
                                 max_new_tokens=max_new, temperature=temperature, fsm=fsm)
            tokens, n = np.asarray(tokens), np.asarray(n)
            for b in range(len(ids)):
                state = 0
                for t in range(n[b]):
                    tok = tokens[b, t]
                    assert trans[state, tok] >= 0, "generated a forbidden token"
                    assert not final[state], "continued after entering a final state"
                    state = trans[state, tok]
                ended_final = final[state]
                ended_eos = n[b] < max_new and not ended_final
                if ended_eos:  # eos must have been allowed from that state
                    assert trans[state, EOS] >= 0
                assert ended_final or ended_eos or n[b] == max_new
                assert np.all(tokens[b, n[b]:] == EOS)


def test_fsm_restricted_vocabulary_path_equals_full_vocabulary_path():
    """The logits-subset shortcut (few allowed ids) gives the same greedy tokens as masking."""
    big = tiny_config(200, dim=32, n_layers=1, n_heads=4, n_kv_heads=2, hidden_dim=48)
    params = init_params(jax.random.key(5), big)
    rng = np.random.default_rng(5)
    trans = np.full((4, big.vocab_size), -1, np.int32)
    allowed = rng.choice(big.vocab_size, 10, replace=False)
    trans[:, allowed] = rng.integers(0, 4, (4, 10))
    final = np.array([False, False, False, True])
    fsm = TokenFSM(transitions=trans, start=0, final=final)
    ids = rng.integers(0, big.vocab_size, (2, 5)).astype(np.int32)
    lens = np.array([5, 3], np.int32)
    a = generate(params, big, ids, lens, key=jax.random.key(0), max_new_tokens=6, fsm=fsm)
    # Reference: a greedy loop with masked full-vocabulary logits.
    for b in range(2):
        seq, state, out = list(ids[b, 5 - lens[b]:]), 0, []
        for _ in range(6):
            logits = _next_logits(params, big, seq)
            logits[trans[state] < 0] = -np.inf
            tok = int(np.argmax(logits))
            out.append(tok)
            seq.append(tok)
            state = trans[state, tok]
            if final[state]:
                break
        assert list(np.asarray(a[0][b, :int(a[1][b])])) == out


def test_prompt_lengths_in_one_bucket_share_one_compiled_program():
    from lfx.lm.generate import _generate

    params = init_params(jax.random.key(0), CFG)
    rng = np.random.default_rng(2)
    generate(params, CFG, rng.integers(3, 20, (2, 5)), np.array([5, 3]), key=jax.random.key(0),
             max_new_tokens=8)
    size = _generate._cache_size()
    for P in (9, 17, 32):  # same bucket (32), new params values, new key: no recompilation
        params = init_params(jax.random.key(P), CFG)
        generate(params, CFG, rng.integers(3, 20, (2, P)), np.array([P, 2]),
                 key=jax.random.key(P), max_new_tokens=8)
    assert _generate._cache_size() == size
