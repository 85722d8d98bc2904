"""brax environments behind the gymnax-1.0 API (skipped without the brax extra)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("brax")

from lfx import envs  # noqa: E402


def test_brax_inverted_pendulum_step_truncation_and_auto_reset():
    env, params = envs.make("brax/inverted_pendulum", max_steps_in_episode=3)
    assert env.action_space(params).shape == (1,)
    key = jax.random.key(0)
    obs, state = env.reset(key, params)
    assert obs.shape == env.observation_space(params).shape
    step = jax.jit(env.step)
    for _ in range(3):
        key, k = jax.random.split(key)
        obs, state, reward, term, trunc, info = step(k, state, jnp.zeros(1), params)
    # Holding still keeps the pole up for 3 steps: the episode ends by truncation, not
    # termination, the state resets and the final observation is kept.
    assert bool(trunc) and not bool(term)
    assert int(state.time) == 0
    assert float(reward) == pytest.approx(1.0)
    assert not np.allclose(info["final_observation"], obs)


def test_unknown_brax_name():
    with pytest.raises(ValueError, match="Unknown brax environment"):
        envs.make("brax/hoppr")
