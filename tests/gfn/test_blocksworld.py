"""BlocksWorld: JAX transitions and masks against the set-based reference, worked plans, BFS lengths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.gfn.blocksworld import (
    BlocksWorld,
    all_configurations,
    count_solutions,
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
    np.testing.assert_allclose(env.log_reward(s, env.default_params), np.log(100.0), rtol=1e-6)
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
    np.testing.assert_allclose(env.log_reward(s, p), np.log(p.failure_reward), rtol=1e-6)  # 0 of 2 met
    half = _state(env, _obj((B, 3, 3), (B, C, -1)))  # a on b holds, b on c does not
    np.testing.assert_allclose(env.log_reward(half, p), np.log(10 * 0.5 + p.failure_reward), rtol=1e-6)


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
