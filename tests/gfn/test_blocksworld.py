"""BlocksWorld: JAX transitions and masks against the set-based reference, worked plans, BFS lengths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.gfn.blocksworld import (
    BlocksWorld,
    all_configurations,
    count_solutions,
    make_blocksworld,
    make_problems,
    optimal_length,
    problem_obj,
    ref_moves,
)
from lfx.gfn.rollout import forward_rollout

A, B, C = 0, 1, 2  # three blocks; table = 3, hand = 4


def _state(env, obj):
    return env.init_state().replace(obj=jnp.asarray(obj, jnp.int32))


def _obj(on, goal, limit=6, max_limit=6):
    return problem_obj(np.asarray(on), np.asarray(goal), limit, max_limit)


def test_all_configurations_counts():
    # towers of n labelled blocks = sorted sets of lists (OEIS A000262): 1, 3, 13, 73, 501
    assert [len(all_configurations(n)) for n in (1, 2, 3, 4, 5)] == [1, 3, 13, 73, 501]


@pytest.mark.parametrize("n", [3, 4])
def test_masks_and_transitions_match_reference_on_every_state(n):
    env = BlocksWorld(n, 6)
    states = set(all_configurations(n))
    for s in list(states):
        states.update(t for _, t in ref_moves(s))
    states = sorted(states)  # every reachable state, hand states included
    never = (1, 0) + (-1,) * (n - 2)  # a goal no state meets: the episode never ends early
    objs = jnp.asarray(np.stack([_obj(s, never, 6) for s in states]))
    st = jax.vmap(lambda o: env.init_state().replace(obj=o))(objs)
    masks = np.asarray(jax.vmap(env.forward_mask, in_axes=(0, None))(st, None))
    acts = jnp.arange(env.num_actions - 1)
    fwd = jax.jit(jax.vmap(jax.vmap(env.apply_forward, in_axes=(None, 0, None)), in_axes=(0, None, None)))
    child = fwd(st, acts, None)
    back = jax.vmap(jax.vmap(env.apply_backward, in_axes=(0, None, None)), in_axes=(0, None, None))(
        child, 0, None)
    child_on = np.asarray(child.obj[..., :n])
    for k, s in enumerate(states):
        ref = dict(ref_moves(s))
        assert set(np.flatnonzero(masks[k, :-1])) == set(ref), s
        assert not masks[k, -1]  # exit masked before the goal or the limit
        for a, t in ref.items():
            assert tuple(child_on[k, a]) == t
            np.testing.assert_array_equal(np.asarray(back.obj[k, a]), np.asarray(objs[k]))  # undo


def test_worked_transitions():
    env = BlocksWorld(3, 6)
    n = 3
    s = _state(env, _obj((3, 3, 3), (B, -1, -1)))  # all on the table; goal: a on b
    m = np.asarray(env.forward_mask(s, None))
    assert list(np.flatnonzero(m)) == [0, 1, 2]  # pick up a / b / c only
    s = env.apply_forward(s, A, None)  # pick up a
    assert tuple(np.asarray(s.obj[:3])) == (4, 3, 3)
    m = np.asarray(env.forward_mask(s, None))
    stack = 2 * n + n * n
    assert list(np.flatnonzero(m)) == [n + A, stack + A * n + B, stack + A * n + C]  # put down, stack on b/c
    s = env.apply_forward(s, stack + A * n + B, None)  # stack a on b: solved
    assert tuple(np.asarray(s.obj[:3])) == (B, 3, 3)
    assert bool(env.is_solved(s.obj))
    assert list(np.flatnonzero(env.forward_mask(s, None))) == [env.exit_action]  # only exit
    np.testing.assert_allclose(env.log_reward(s, env.default_params), np.log(100.0 + 6), rtol=1e-6)  # + limit
    # now unstack a from b: legal, the hand holds a
    s2 = _state(env, _obj((B, 3, 3), (C, -1, -1)))
    unstack = 2 * n + A * n + B
    assert bool(env.forward_mask(s2, None)[unstack])
    assert tuple(np.asarray(env.apply_forward(s2, unstack, None).obj[:3])) == (4, 3, 3)
    assert not bool(env.forward_mask(s2, None)[B])  # b is covered: cannot pick it up


def test_step_limit_forces_exit_and_partial_reward():
    env = BlocksWorld(3, 6)
    p = env.default_params
    s = _state(env, _obj((3, 3, 3), (B, C, -1), limit=1))  # a on b, b on c; one move allowed
    s = env.apply_forward(s, A, None)
    assert list(np.flatnonzero(env.forward_mask(s, None))) == [env.exit_action]
    np.testing.assert_allclose(env.log_reward(s, p), np.log(0 + 1), rtol=1e-6)  # 0 of 2 met, + limit 1
    half = _state(env, _obj((B, 3, 3), (B, C, -1)))  # a on b holds, b on c does not; limit 6
    np.testing.assert_allclose(env.log_reward(half, p), np.log(10 * 0.5 + 6), rtol=1e-6)
    old = p.replace(failure_reward=1e-2, step_reward=0.0)  # lfx's first version: floor, no step term
    np.testing.assert_allclose(env.log_reward(s, old), np.log(1e-2), rtol=1e-6)
    np.testing.assert_allclose(env.log_reward(half, old), np.log(5 + 1e-2), rtol=1e-6)


def _for_code_log_reward(on, goal, step):
    """NumPy transcription of FoR's BlocksWorld log reward (Yu-Fangxu/FoR,
    BlocksWorld/lightning_module_selection.py): the goal facts "the x block is on top of the y block"
    (line 586) and their meetings (587); r1 = 100 if all are met else 10 * sum / len (588-591); with
    the language-model term off (`ll_weight == 0`, lines 181-184) ll_reward = [1] * args.step and
    ll_weight = 1, and the log reward is log(r1 + ll_weight * ll_reward.sum()) (line 191)."""
    goals = [(i, g) for i, g in enumerate(goal) if g >= 0]
    meetings = [on[i] == g for i, g in goals]
    r1 = 100 if sum(meetings) == len(meetings) else 10 * sum(meetings) / len(meetings)
    ll_reward, ll_weight = np.ones(step), 1
    return np.log(r1 + ll_weight * ll_reward.sum())


@pytest.mark.parametrize("n", [3, 4])
def test_reward_with_step_term_matches_for_code(n):
    """Every configuration of n blocks (hand states included) against random block-on-block goals
    and every step limit 1..6: the env's log R equals the transcription of FoR's code."""
    rng = np.random.default_rng(n)
    env = BlocksWorld(n, 6)
    states = set(all_configurations(n))
    for s in list(states):
        states.update(t for _, t in ref_moves(s))
    goals = []
    for target in [all_configurations(n)[i] for i in rng.integers(0, len(all_configurations(n)), 12)]:
        goal = tuple(t if t < n else -1 for t in target)
        if any(g >= 0 for g in goal):
            goals.append(goal)
    rows = [(s, g, lim) for s in sorted(states) for g in goals for lim in range(1, 7)]
    objs = jnp.asarray(np.stack([_obj(s, g, lim) for s, g, lim in rows]))
    got = jax.jit(jax.vmap(lambda o: env.log_reward(env.init_state().replace(obj=o), env.default_params)))(objs)
    want = np.asarray([_for_code_log_reward(s, g, lim) for s, g, lim in rows])
    assert len({round(float(w), 6) for w in want}) > 10  # many distinct values: not vacuous
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)


def test_rewards_that_give_log_zero_are_refused():
    with pytest.raises(ValueError, match="failure_reward > 0 or step_reward > 0"):
        make_blocksworld(3, 4, failure_reward=0.0, step_reward=0.0)
    with pytest.raises(ValueError, match="step_reward must be >= 0"):
        make_blocksworld(3, 4, step_reward=-1.0)
    make_blocksworld(3, 4, failure_reward=1e-2, step_reward=0.0)  # lfx's first version stays valid


def test_bfs_lengths_and_plan_counts_on_worked_examples():
    # a on b from all-on-table: pick up a, stack a b (the only plan)
    assert optimal_length((3, 3, 3), (B, -1, -1)) == 2
    assert count_solutions((3, 3, 3), (B, -1, -1), 2) == 1
    # swap a tower of two (a on b -> b on a): unstack a b, then put a down OR stack it on c,
    # then pick up b, stack b a: two plans
    assert optimal_length((B, 3, 3), (-1, A, -1)) == 4
    assert count_solutions((B, 3, 3), (-1, A, -1), 4) == 2
    assert count_solutions((B, 3), (-1, A), 4) == 1  # without c, only the put-down plan
    # Sussman anomaly: c on a, goal a on b on c; 6 steps, one optimal plan
    assert optimal_length((3, 3, A), (B, C, -1)) == 6
    assert count_solutions((3, 3, A), (B, C, -1), 6) == 1
    # already solved: length 0, the empty plan is the one solution
    assert optimal_length((B, 3, 3), (B, -1, -1)) == 0
    assert count_solutions((B, 3, 3), (B, -1, -1), 4) == 1


def test_count_solutions_matches_sampled_plans():
    """Every distinct solved trajectory found by uniform sampling with the JAX env is one that
    count_solutions counts, and with many samples all of them are found (2-step problem, slack 2)."""
    env = BlocksWorld(3, 4)
    init, goal = (3, 3, 3), (B, -1, -1)
    total = count_solutions(init, goal, 4)
    objs = jnp.asarray(np.repeat(_obj(init, goal, 4, 4)[None], 4096, 0))

    def apply(params, obs):
        from lfx.gfn.networks import PolicyOutput
        z = jnp.zeros(obs.shape[:-1])
        return PolicyOutput(jnp.zeros((*obs.shape[:-1], env.num_actions)), z[..., None], z)

    tr = jax.jit(lambda k: forward_rollout(k, None, env, env.default_params, apply, 4096, init_obj=objs))(
        jax.random.key(0))
    solved = np.asarray(jax.vmap(env.is_solved)(tr.terminal_obj))
    found = {tuple(x) for x, ok in zip(np.asarray(tr.terminal_obj), solved) if ok}
    assert total > 1 and len(found) == total
    assert np.all(np.asarray(tr.length) <= 5)  # at most limit moves + exit


def test_problem_splits_have_the_requested_optimal_length():
    tr = make_problems(0, 4, 4, 6)
    te = make_problems(1, 4, 4, 5, exclude=tr)
    keys = {(p["init"], p["goal"]) for p in tr + te}
    assert len(keys) == 11
    for p in tr + te:
        assert optimal_length(p["init"], p["goal"]) == 4
        assert p["num_solutions"] == count_solutions(p["init"], p["goal"], 4) >= 1
    with pytest.raises(ValueError, match="even"):
        make_problems(0, 4, 3, 2)


def test_invalid_settings_raise():
    with pytest.raises(ValueError, match="num_blocks"):
        BlocksWorld(1)
    with pytest.raises(ValueError, match="max_limit"):
        problem_obj(np.zeros(3), np.zeros(3), 7, 6)
