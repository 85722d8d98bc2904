"""EvoLLM: encoding/prompt worked examples, grammar FSM vs regex, constrained decoding, ask/tell."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.es import bbob, make_search
from lfx.es.evollm import EvoLLM, EvoLLMConfig, LanguageModel, encoding, grammar, prompt, toy_lm


def test_encoding_worked_examples():
    x = jnp.array([-1.234, 0.005, 4.999, 7.0])
    np.testing.assert_array_equal(encoding.discretise_x(x, 2, 5.0), [-123, 0, 500, 500])
    np.testing.assert_allclose(encoding.undiscretise_x(jnp.array([-123, 7]), 2), [-1.23, 0.07])
    np.testing.assert_array_equal(
        encoding.discretise_fitness(jnp.array([-3.0, -1.0, -2.0]), 3), [0, 999, 500]
    )
    np.testing.assert_array_equal(encoding.discretise_fitness(jnp.array([2.0, 2.0]), 2), [0, 0])
    assert encoding.format_numbers([-123, 0, 45]) == "-123,0,45"
    assert encoding.parse_numbers("-123,0,45", 3) == [-123, 0, 45]
    for bad in ["-123,0", "1,,2", "1,-,2", "1,2,3,4", "a,1,2", "1,2, 3", "١,2,3"]:
        assert encoding.parse_numbers(bad, 3) is None, bad
    assert encoding.num_int_digits(5.0, 2) == 3 and encoding.max_abs_int(5.0, 2) == 500


def test_round_trip_random():
    rng = np.random.default_rng(0)
    ints = rng.integers(-500, 501, size=(200, 3))
    for row in ints:
        assert encoding.parse_numbers(encoding.format_numbers(row), 3) == list(row)
    x = encoding.undiscretise_x(jnp.asarray(ints), 2)
    np.testing.assert_array_equal(encoding.discretise_x(x, 2, 5.0), ints)


def test_prompt_worked_example():
    text = prompt.block_prompt(np.array([[-150, 32], [-120, 10]]), np.array([0, 999]))
    assert text == "-150,32:0\n-120,10:999\n"
    ids, lengths = prompt.left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids == [[5, 6, 7], [0, 0, 8]] and lengths == [3, 1]


def _regex(k, m):
    num = rf"-?[0-9]{{1,{m}}}"
    return re.compile(rf"{num}(,{num}){{{k - 1}}}:")


def test_char_dfa_accepts_exactly_the_grammar():
    rng = np.random.default_rng(1)
    alphabet = list("0123456789-,:x")
    for k, m in [(1, 1), (2, 3), (3, 2)]:
        dfa, rx = grammar.CharDFA(k, m), _regex(k, m)
        for _ in range(3000):
            # Bias towards near-valid strings so both outcomes are common.
            n = rng.integers(0, 4 * k * (m + 2))
            s = "".join(rng.choice(alphabet, p=[0.07] * 10 + [0.1, 0.12, 0.06, 0.02]) for _ in range(n))
            assert dfa.accepts(s) == bool(rx.fullmatch(s)), (k, m, s)
        assert dfa.accepts(",".join(["-" + "9" * m] * k) + ":")


def test_token_fsm_with_multichar_tokens_equals_regex():
    strings = ["", "<s>"] + list("0123456789") + ["-", ",", ":", "12", ",-", "0:", "a", "9,9", " 1"]
    trans, start, final = grammar.build_token_transitions(strings, 2, 3, absorbing_ids=(1,))
    rx = _regex(2, 3)
    rng = np.random.default_rng(2)
    for _ in range(4000):
        seq = rng.integers(0, len(strings), size=rng.integers(1, 9))
        s, alive = start, True
        for t in seq:
            s = trans[s, t]
            if s < 0:
                alive = False
                break
        seq = list(seq)
        # Token 1 (EOS) is only allowed, and absorbing, after a complete proposal.
        head = seq[: seq.index(1)] if 1 in seq else seq
        tail_ok = all(t == 1 for t in seq[len(head):])
        text = "".join(strings[t] for t in head)
        expected = bool(rx.fullmatch(text)) and all(strings[t] for t in head) and tail_ok
        assert (alive and final[s]) == expected, [strings[t] for t in seq]
    assert trans[np.argmax(final), 1] == np.argmax(final)  # EOS keeps the final state


def test_grammar_needs_single_char_tokens():
    with pytest.raises(ValueError, match="single-character"):
        grammar.build_token_transitions(["", "1", ","], 1, 1)


def _toy_lm(seed=0, scale=3.0):
    tok = toy_lm.ToyCharTokenizer()
    params, cfg = toy_lm.init_toy_lm(jax.random.key(seed), tok, scale)
    return LanguageModel(params, cfg, tok, toy_lm.generate)


def _small_llama_lm():
    lm_mod = pytest.importorskip("lfx.lm")
    tok = lm_mod.CharTokenizer()
    cfg = lm_mod.tiny_config(tok.vocab_size, dim=32, n_layers=1, n_heads=2, n_kv_heads=1, hidden_dim=64)
    from lfx.es.evollm import lfx_lm

    return lfx_lm(lm_mod.init_params(jax.random.key(0), cfg), cfg, tok)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_constrained_decoding_always_parses_toy(temperature):
    """Random bigram weights, 64 rows, greedy and sampled: every continuation parses."""
    for seed in range(3):
        ev = EvoLLM(EvoLLMConfig(num_dims=3, block_size=3, temperature=temperature), _toy_lm(seed))
        texts = [f"{i},-{i},{2 * i}:{i}\n" for i in range(64)]
        outs = ev.propose_texts(texts, seed)
        for out in outs:
            values, ok = ev.parse(out)
            assert ok and len(values) == 3 and all(abs(v) < 10**ev.max_digits for v in values), out


def test_constrained_decoding_always_parses_small_llama():
    lm = _small_llama_lm()
    ev = EvoLLM(EvoLLMConfig(num_dims=2, block_size=2, temperature=1.0), lm)
    outs = ev.propose_texts([f"{i},{-i}:{i}\n" for i in range(16)], 0)
    assert all(ev.parse(o)[1] for o in outs), outs


class _ScriptedLM:
    """Returns the same continuation text for every row (through the tokenizer)."""

    def __init__(self, text):
        self.tok = toy_lm.ToyCharTokenizer()
        self.text = text

    def generate(self, params, config, prompt_ids, prompt_lengths, *, key, max_new_tokens, temperature, fsm, **kw):
        ids = self.tok.encode(self.text)[:max_new_tokens]
        ids = ids + [0] * (max_new_tokens - len(ids))
        b = prompt_ids.shape[0]
        return jnp.tile(jnp.asarray(ids, jnp.int32), (b, 1)), jnp.full((b,), len(self.text), jnp.int32)

    def lm(self):
        return LanguageModel(None, None, self.tok, self.generate)


def test_ask_tell_shapes_and_mean_update():
    cfg = EvoLLMConfig(population_size=6, num_dims=5, block_size=2, context_length=4, sigma=0.3)
    ev = EvoLLM(cfg, _ScriptedLM("123,-45:").lm())
    params = ev.default_params
    state = ev.init(jax.random.key(0), jnp.zeros(5), params)
    pop, state = jax.jit(ev.ask)(jax.random.key(1), state, params)
    assert pop.shape == (6, 5)
    np.testing.assert_array_equal(pop[0], jnp.zeros(5))  # evaluate_mean
    fit = -jnp.sum(pop**2, axis=1)
    new_state, metrics = jax.jit(ev.tell)(jax.random.key(2), pop, fit, state, params)
    assert jax.tree.map(jnp.shape, new_state) == jax.tree.map(jnp.shape, state)
    assert jax.tree.map(lambda a: a.dtype, new_state) == jax.tree.map(lambda a: a.dtype, state)
    # Blocks (0,1), (2,3), (3,4): dim 3 is owned by block 1, dim 4 by the overlapping block 2.
    np.testing.assert_allclose(new_state.mean, [1.23, -0.45, 1.23, -0.45, -0.45], rtol=1e-6)
    assert int(metrics["evollm/fallback_coords"]) == 0
    np.testing.assert_allclose(new_state.best_fitness, jnp.max(fit))


def test_out_of_range_and_unparsable_fall_back_visibly():
    cfg = EvoLLMConfig(population_size=4, num_dims=2, block_size=2, x_bound=5.0)
    for text, oor, fail in [("999,1:", 1, 0), ("12,", 0, 1)]:
        ev = EvoLLM(cfg, _ScriptedLM(text).lm())
        params = ev.default_params
        state = ev.init(jax.random.key(0), jnp.zeros(2), params)
        pop, state = ev.ask(jax.random.key(1), state, params)
        fit = -jnp.sum((pop - 1.0) ** 2, axis=1)
        state, m = ev.tell(jax.random.key(2), pop, fit, state, params)
        best = pop[jnp.argmax(fit)]
        assert int(m["evollm/out_of_range"]) == oor and int(m["evollm/parse_fail"]) == fail
        if oor:
            np.testing.assert_allclose(state.mean, [best[0], 0.01], rtol=1e-6)
        else:
            np.testing.assert_allclose(state.mean, best, rtol=1e-6)


@pytest.mark.parametrize("order", ["least_to_most", "most_to_least"])
def test_context_sorted(order):
    cfg = EvoLLMConfig(population_size=5, num_dims=2, context_length=3, sort_order=order)
    ev = EvoLLM(cfg, _toy_lm())
    params = ev.default_params
    state = ev.init(jax.random.key(0), jnp.zeros(2), params)
    pop = jnp.arange(10.0).reshape(5, 2) / 10
    fit = jnp.array([3.0, 1.0, 5.0, 2.0, 4.0])
    state = ev.update_archive(state, pop, fit)
    x_int, f_int, valid = ev.context(jax.random.key(0), state)
    assert bool(jnp.all(valid))
    rows = [2, 4, 0] if order == "most_to_least" else [0, 4, 2]  # top-3 are members 2, 4, 0
    np.testing.assert_array_equal(x_int[0], np.round(np.asarray(pop[jnp.array(rows)]) * 100))
    expected_f = [999, 500, 0] if order == "most_to_least" else [0, 500, 999]
    np.testing.assert_array_equal(f_int, expected_f)


def test_vmapped_evollm_run_equals_loop_and_batches_lm_calls():
    ev = EvoLLM(EvoLLMConfig(population_size=4, num_dims=3, block_size=2, context_length=4), _toy_lm())
    fitness = bbob.make_fitness(("sphere",), 3)
    task = bbob.make_task("sphere", 3, 0)
    search = make_search(ev, fitness, 4)
    keys = jax.random.split(jax.random.key(3), 3)
    calls = ev.host_calls
    _, m_vmap = jax.jit(jax.vmap(search, in_axes=(0, None, None, None)))(keys, jnp.zeros(3), ev.default_params, task)
    assert ev.host_calls - calls == 4  # one batched LM call per generation for all seeds and blocks
    loop = jax.jit(search)
    for i in range(3):
        _, m_i = loop(keys[i], jnp.zeros(3), ev.default_params, task)
        np.testing.assert_allclose(m_vmap["best_aux"][i], m_i["best_aux"], rtol=1e-5)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="sort_order"):
        EvoLLM(EvoLLMConfig(sort_order="random_walk"), _toy_lm())
    with pytest.raises(ValueError, match="block_size"):
        EvoLLM(EvoLLMConfig(block_size=0), _toy_lm())


def test_teacher_text_worked_example():
    from lfx.es.evollm import teacher

    ev = EvoLLM(EvoLLMConfig(num_dims=2, block_size=2, context_length=3), _toy_lm())
    x_int = np.array([[[[1, 2], [3, 4], [5, 6]]]])  # [G=1, nb=1, L=3, k=2]
    f_int = np.array([[0, 500, 999]])
    valid = np.array([[False, True, True]])
    target = np.array([[[-7, 8]]])
    assert teacher.to_texts(ev, x_int, f_int, valid, target) == ["3,4:500\n5,6:999\n-7,8:"]


def test_best_context_keeps_distinct_points():
    ev = EvoLLM(EvoLLMConfig(population_size=3, num_dims=2, context_length=3), _toy_lm())
    state = ev.init(jax.random.key(0), jnp.zeros(2), ev.default_params)
    pop = jnp.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    state = ev.update_archive(state, pop, jnp.array([5.0, 1.0, 0.0]))
    state = ev.update_archive(state, jnp.array([[1.0, 1.0], [1.0, 1.0], [4.0, 4.0]]), jnp.array([5.0, 5.0, 2.0]))
    np.testing.assert_array_equal(np.sort(np.asarray(state.archive_f)), [1.0, 2.0, 5.0])
