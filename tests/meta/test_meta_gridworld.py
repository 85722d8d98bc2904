"""LPG grid worlds: movement, walls, collection, termination/respawn probabilities, random levels."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx import envs
from lfx.envs import gridworld as g

NAMES = [n for n in envs.registered_envs() if n.startswith("LPG-")]


@pytest.mark.parametrize("name", NAMES)
def test_registered_levels_are_valid(name):
    env, params = envs.make(name)
    walls = np.asarray(params.walls)
    pos = np.asarray(params.object_pos)
    assert not walls[pos[:, 0], pos[:, 1]].any()
    assert len({tuple(p) for p in pos}) == len(pos)  # distinct cells
    if name in ("LPG-Tabular-LongerHorizon", "LPG-Random-Dense"):  # one reset per kind (compiles)
        obs, state = env.reset(jax.random.key(0), params)
        assert obs.shape == env.observation_space(params).shape
        assert not walls[tuple(np.asarray(state.pos))]


def _level(kinds, art=None):
    layout = g.GridLayout(art or g._box(5, 5), kinds, 100)
    env = g.GridWorld(layout)
    params = env.default_params
    return env, params


def test_walls_block_and_collection_rewards_and_terminates():
    env, params = _level(((1, 2.5, 1.0, 0.0),))
    params = params.replace(object_pos=jnp.array([[1, 2]], jnp.int32))
    state = g.EnvState(pos=jnp.array([1, 1], jnp.int32), present=jnp.array([True]), time=0)
    k = jax.random.key(0)
    # North from row 1 hits the wall: stays; reward 0.
    _, s, r, te, tr, _ = env.step(k, state, 1, params)
    np.testing.assert_array_equal(s.pos, [1, 1])
    assert float(r) == 0.0 and not bool(te)
    # East onto the object: reward 2.5, eps_term = 1 terminates.
    _, s, r, te, tr, info = env.step(k, state, 2, params)
    assert float(r) == 2.5 and bool(te) and not bool(tr)


def test_respawn_and_termination_frequencies():
    env, params = _level(((1, 1.0, 0.3, 0.5),))
    params = params.replace(object_pos=jnp.array([[1, 2]], jnp.int32))
    state = g.EnvState(pos=jnp.array([1, 1], jnp.int32), present=jnp.array([True]), time=0)
    keys = jax.random.split(jax.random.key(1), 4000)
    out = jax.vmap(lambda k: env.step_env(k, state, 2, params))(keys)
    _, s, r, te, _ = out
    np.testing.assert_allclose(float(te.mean()), 0.3, atol=0.03)
    np.testing.assert_allclose(float(s.present.mean()), 0.5, atol=0.03)  # respawned right away
    assert float(r.min()) == 1.0


def test_random_levels_vary_and_observe_objects():
    layout = g.LAYOUTS["small"]
    levels = jax.vmap(lambda k: g.random_level(k, layout))(jax.random.split(jax.random.key(0), 8))
    assert len({tuple(np.asarray(p).ravel()) for p in levels.object_pos}) == 8
    env, params = envs.make("LPG-Random-Small")
    obs, state = env.reset(jax.random.key(0), params)
    h, w = env.shape
    maps = np.asarray(obs).reshape(1 + env.num_kinds, h, w)
    assert maps[0].sum() == 1 and maps[1:].sum() == params.object_pos.shape[0]
