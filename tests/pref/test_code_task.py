"""The code task: problems pin their function down, the sandbox passes the references, and the
execution reward runs from inside jit and vmap through `jax.pure_callback`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.pref import code_task as ct
from lfx.pref.prompts import REWARDS
from lfx.pref.sandbox import run_batch


@pytest.fixture(scope="module")
def task():
    return ct.make_prompt_data(0, 24, 8, families=ct.SINGLE_OP + ct.TWO_OP)


def test_problems_are_deterministic_and_their_examples_pin_the_function_down():
    a = ct.sample_problems(np.random.default_rng(3), 200, families=ct.SINGLE_OP + ct.TWO_OP)
    b = ct.sample_problems(np.random.default_rng(3), 200, families=ct.SINGLE_OP + ct.TWO_OP)
    assert a == b and {p.family for p in a} == set(ct.FAMILIES)
    names, values = ct._candidates(tuple(ct.FAMILIES))
    for p in a:
        fam = ct.FAMILIES[p.family]
        assert all(fam.fn(x, *p.consts) == y for x, y in p.shown + p.hidden)
        assert {x for x, _ in p.shown} <= {x for x, _ in p.hidden} and len(p.hidden) == 8
        shown = np.array([x for x, _ in p.shown])
        hidden = np.array([x for x, _ in p.hidden])
        agree = (values[:, shown] == [y for _, y in p.shown]).all(1)
        assert (values[agree][:, hidden] == [y for _, y in p.hidden]).all()
    with pytest.raises(ValueError, match="Unknown families"):
        ct.sample_problems(np.random.default_rng(0), 1, families=["pow"])
    with pytest.raises(ValueError, match="num_shown"):
        ct.sample_problems(np.random.default_rng(0), 1, num_shown=9, num_hidden=8)


def test_text_round_trips_and_numbers_join_their_digits():
    tok = ct.tokenizer()
    ids = ct.encode("f ( 12 ) = - 4 ; def f ( x ) :")
    assert [tok.decode([i]) for i in ids[:5]] == ["f", "(", "1", "2", ")"]
    assert ct.detokenize(ids) == "f ( 12 ) = - 4 ; def f ( x ) :"
    assert ct.detokenize([1, *ct.encode("return x // 3"), 2, 0]) == "return x // 3"
    with pytest.raises(ValueError, match="not in the WordTokenizer vocabulary"):
        ct.encode("return x ** 2")


def test_prompts_decode_back_to_the_problem_text(task):
    data, meta = task
    problems = meta["problems"]
    assert len(problems) == 32 and meta["prompt_len"] == data.train.prompts.shape[1]
    train_prompts = {p.prompt for p in problems[:24]}
    assert not train_prompts & {p.prompt for p in problems[24:]}
    for split, offset in ((data.train, 0), (data.eval, 24)):
        prompts, lengths = np.asarray(split.prompts), np.asarray(split.lengths)
        P = prompts.shape[1]
        for i, row in enumerate(prompts):
            p = problems[int(split.targets["problem"][i])]
            assert int(split.targets["problem"][i]) == offset + i
            assert (row[:P - lengths[i]] == 0).all() and row[P - lengths[i]] == 1  # pad, <bos>
            assert ct.detokenize(row) == p.prompt
            assert p.prompt.endswith("; def f ( x ) :")
    assert int(data.reward_params["code"]["task_id"]) == meta["task_id"] in ct.TABLES


def test_reference_bodies_pass_their_hidden_tests_and_wrong_ones_fail(task):
    problems = task[1]["problems"]
    refs = run_batch([ct.program(p.body) for p in problems], [p.tests for p in problems])
    assert all(r.passed for r in refs), [(p.body, r) for p, r in zip(problems, refs) if not r.passed]
    wrong = run_batch([ct.program("return x")] * 4 + [ct.program("return x +")],
                      [p.tests for p in problems[:5]])
    assert not any(r.passed for r in wrong) and wrong[4].status == "syntax_error"


def _hand_made(task):
    data, meta = task
    problems = meta["problems"]
    p = problems[0]
    other = ct.FAMILIES[p.family].template.format(*[c % 8 + 2 for c in p.consts])  # constants
    bodies = [p.body, "return x +", other, "", "return f ( x )", p.body]
    responses, lengths = ct.encode_responses(bodies, 12)
    fraction = np.array([r.fraction for r in run_batch([ct.program(b) for b in bodies],
                                                       [p.tests] * len(bodies))], np.float32)
    rows = data.eval.rows(jnp.zeros((len(bodies),), jnp.int32))
    rows = rows.replace(targets={"problem": jnp.zeros((len(bodies),), jnp.int32)})
    return (data.reward_params["code"], rows, jnp.asarray(responses), jnp.asarray(lengths),
            fraction)


def test_the_reward_runs_the_sandbox_under_jit(task):
    params, rows, responses, lengths, fraction = _hand_made(task)
    ct.clear_cache()
    r = np.asarray(jax.jit(ct.code_reward)(params, rows, responses, lengths))
    np.testing.assert_array_equal(r, (fraction == 1).astype(np.float32))
    np.testing.assert_array_equal(r[[0, 1, 3, 4, 5]], [1, 0, 0, 0, 1])  # ok, syntax x2, recursion
    rf = jax.jit(ct.code_fraction_reward)(params, rows, responses, lengths)
    np.testing.assert_allclose(rf, fraction)
    assert rf.dtype == jnp.float32 and rf[1] == 0
    # eos and padding after lengths[b] are ignored; a long tail would not parse
    padded = responses.at[0, lengths[0]:].set(ct.encode("return")[0])
    np.testing.assert_array_equal(jax.jit(ct.code_reward)(params, rows, padded, lengths), r)
    assert REWARDS["code"].fn is ct.code_reward
    assert REWARDS["code_fraction"].fn is ct.code_fraction_reward


def test_the_reward_under_vmap_calls_the_host_once_per_row(task, monkeypatch):
    params, rows, responses, lengths, _ = _hand_made(task)
    flat = ct.code_reward(params, rows, responses, lengths)
    calls, host = [], ct.score_responses
    monkeypatch.setattr(ct, "score_responses", lambda *a, **k: calls.append(1) or host(*a, **k))
    G = 2
    stack = lambda a: jnp.stack([a, a[::-1]])  # noqa: E731
    f = jax.jit(jax.vmap(lambda t, y, n: ct.code_reward(params, t, y, n) * 2.0))  # t: rows
    out = f(jax.tree.map(stack, rows), stack(responses), stack(lengths))
    assert out.shape == (G, responses.shape[0])
    np.testing.assert_array_equal(out, 2.0 * jnp.stack([flat, flat[::-1]]))
    assert len(calls) == G


def test_bad_arguments_are_refused(task):
    params, rows, responses, lengths, _ = _hand_made(task)
    with pytest.raises(ValueError, match="No tests table"):
        ct.code_reward({"task_id": jnp.int32(12345)}, rows, responses, lengths)
    with pytest.raises(ValueError, match="No tests table"):
        ct.score_responses(12345, np.zeros(1), np.zeros((1, 2)), np.zeros(1), fraction=False)
    with pytest.raises(ValueError, match=r"responses \[B, K\]"):
        ct.code_reward(params, rows, responses[0], lengths)
    with pytest.raises(ValueError, match="Problem indices"):
        ct.score_responses(int(params["task_id"]), np.array([10**6]), responses[:1], lengths[:1],
                           fraction=False)
    tid = ct.register_tests([["assert True"]], task_id=7)
    assert ct.register_tests([["assert True"]], task_id=7) == tid == 7
    with pytest.raises(ValueError, match="another tests table"):
        ct.register_tests([["assert False"]], task_id=7)
