"""lfx.envs.make covers gymnax's environments, overrides params, and rejects unknown names."""

import gymnax
import jax
import numpy as np
import pytest

from lfx import envs

OFFLINE = [n for n in gymnax.registered_envs if n not in envs.registry.NEEDS_DOWNLOAD]


def test_environments_that_download_data_are_refused_by_default():
    with pytest.raises(ValueError, match="allow_download=True"):
        envs.make("MNISTBandit-bsuite")


@pytest.mark.parametrize("name", OFFLINE)
def test_make_returns_the_gymnax_environment(name):
    env, params = envs.make(name)
    ref_env, ref_params = gymnax.make(name)
    assert type(env) is type(ref_env)
    assert jax.tree.structure(params) == jax.tree.structure(ref_params)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params)):
        np.testing.assert_array_equal(a, b)


def test_param_overrides_reach_env_params_and_change_dynamics():
    env, params = envs.make("CartPole-v1", gravity=20.0)
    assert params.gravity == 20.0
    _, ref_params = gymnax.make("CartPole-v1")
    key = jax.random.key(0)
    obs, state = env.reset(key, params)
    a = env.step(key, state, 1, params)[0]
    b = env.step(key, state, 1, ref_params)[0]
    assert not np.allclose(a, b)


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="CartPole-v1"):
        envs.make("Cartpole-v1")
    with pytest.raises(ValueError, match="Unknown environment"):
        envs.make("definitely-not-an-env")


def test_brax_names_are_listed():
    assert "brax/hopper" in envs.registered_envs()


def test_step_semantics_six_values_and_auto_reset():
    env, params = envs.make("CartPole-v1", max_steps_in_episode=5)
    key = jax.random.key(1)
    obs, state = env.reset(key, params)
    for _ in range(5):
        key, k = jax.random.split(key)
        obs, state, reward, terminated, truncated, info = env.step(k, state, 0, params)
    # Pushing left for 5 steps cannot topple the pole, so the 5th step is a truncation: the
    # state auto-resets (time 0) while info keeps the final observation.
    assert bool(truncated) and not bool(terminated)
    assert int(state.time) == 0
    assert not np.allclose(info["final_observation"], obs)


def test_bad_make_arguments_are_value_errors_that_say_what_to_change():
    with pytest.raises(ValueError, match="must be a string"):
        envs.make(None)
    with pytest.raises(ValueError, match="max_steps_in_episode must be a number"):
        envs.make("CartPole-v1", max_steps_in_episode="abc")
    with pytest.raises(ValueError, match=r"unknown keyword argument.*'foo'.*It accepts.*gravity"):
        envs.make("CartPole-v1", foo=1)
    _, params = envs.make("CartPole-v1", max_steps_in_episode=100)
    assert params.max_steps_in_episode == 100
