"""Flow of Reasoning pieces: puzzle sampling and multi-puzzle rollouts on Game24."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.gfn.for_game24 import make_game24_train, make_puzzles
from lfx.gfn.for_train import FoRConfig
from lfx.gfn.game24 import Game24, puzzle_obj, solutions_bruteforce, solvable
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
