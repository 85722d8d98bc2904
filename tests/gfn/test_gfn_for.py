"""Flow of Reasoning pieces: puzzle sampling and multi-puzzle rollouts on Game24."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.gfn.for_game24 import make_game24_train, make_puzzles
from lfx.gfn.for_train import FoRConfig
from lfx.gfn.game24 import Game24, make_game24, puzzle_obj, solutions_bruteforce, solvable
from lfx.gfn.networks import make_policy
from lfx.gfn.rollout import forward_rollout


def test_puzzles_are_distinct_solvable_and_disjoint():
    tr = make_puzzles(0, 6)
    te = make_puzzles(1, 4, exclude=[tuple(p) for p in tr])
    assert len({tuple(p) for p in np.concatenate([tr, te])}) == 10
    assert all(solvable(p) for p in te)
    assert len(solutions_bruteforce(tuple(te[0]))) > 0
    assert not solvable((1, 1, 1, 1))


def test_multi_puzzle_rollout_keeps_each_lanes_puzzle():
    puzzles = make_puzzles(0, 4)
    env = Game24(tuple(puzzles[0]))
    init, apply = make_policy(env.obs_size, env.num_actions, 1, hidden=(16,))
    objs = jnp.asarray(np.repeat(np.stack([puzzle_obj(p) for p in puzzles]), 8, 0))
    tr = jax.jit(lambda k: forward_rollout(k, init(jax.random.key(0)), env, env.default_params, apply, 32,
                                           epsilon=1.0, init_obj=objs))(jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(tr.terminal_obj)[:, :8], np.asarray(objs)[:, :8])
    assert bool(jnp.all(tr.length == 4)) and bool(jnp.all(tr.terminal_obj[:, 35] == 3))
    # the observation carries the puzzle: two lanes with different puzzles see different inputs
    assert not np.allclose(env.get_obs(env.init_state().replace(obj=objs[0])),
                           env.get_obs(env.init_state().replace(obj=objs[8])))


def test_for_invalid_method_raises():
    with pytest.raises(ValueError, match="method"):
        make_game24_train(FoRConfig(method="a2c"), make_puzzles(0, 2))


def test_game24_rewards_are_for_codes_100_and_0_001():
    """FoR's code (Game24/lightning_module.py lines 215-216): R = 100 when the last number is 24, else
    0.001. Puzzle 3 3 8 8, whose only solutions go through fractions (8 / (3 - 8/3)): every true
    solution (Fraction solver) and 512 uniform rollouts get log 100 exactly when their operation
    sequence is a solution, else log 0.001."""
    env, ep = make_game24((3, 3, 8, 8))
    sols = set(solutions_bruteforce((3, 3, 8, 8)))
    step = jax.jit(jax.vmap(lambda o, a: env.apply_forward(env.init_state().replace(obj=o), a, ep).obj))
    obj = jnp.asarray(np.repeat(puzzle_obj((3, 3, 8, 8))[None], len(sols), 0))
    for t in range(3):
        obj = step(obj, jnp.asarray([seq[t] for seq in sorted(sols)], jnp.int32))
    init, apply = make_policy(env.obs_size, env.num_actions, 1, hidden=(8,))
    tr = jax.jit(lambda k: forward_rollout(k, init(jax.random.key(0)), env, ep, apply, 512, epsilon=1.0))(
        jax.random.key(1))
    obj = jnp.concatenate([obj, tr.terminal_obj])
    log_r = np.asarray(jax.vmap(lambda o: env.log_reward(env.init_state().replace(obj=o), ep))(obj))
    is_sol = np.asarray([tuple(int(a) for a in o[32:35]) in sols for o in np.asarray(obj)])
    assert len(sols) > 0 and is_sol.sum() >= len(sols) and (~is_sol).sum() > 400
    np.testing.assert_allclose(log_r, np.where(is_sol, np.log(100.0), np.log(1e-3)), rtol=1e-6)
    _, old = make_game24((3, 3, 8, 8), failure_reward=1e-2)  # lfx's first version stays reachable
    assert old.failure_reward == 1e-2
    with pytest.raises(ValueError, match="failure_reward must be > 0"):
        make_game24((3, 3, 8, 8), failure_reward=0.0)
