"""lfx.offline.generate: rollout layout, the replay buffer's medium-replay rows, levels, determinism."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from lfx import envs
from lfx.offline import dataset as ds
from lfx.offline import generate
from lfx.rl import sac
from tests.offline import offline_testutil as tu

TINY = generate.GenerateConfig(
    sac_config=sac.SACConfig(num_envs=2, gradient_steps=1, total_timesteps=400, learning_starts=100,
                             buffer_size=400, hidden_sizes=(8,), batch_size=16),
    snapshot_every=50, size=40, num_envs=2, ref_episodes=2)


def stream_breaks(data):
    """Rows i whose successor row does not continue the episode (next_obs[i] != obs[i+1])."""
    return np.flatnonzero(~generate.continues(data.next_observations[:-1], data.observations[1:]))


def test_rollouts_are_env_major_contiguous_episodes():
    data = tu.pendulum_rollouts(jax.random.key(0), tu.uniform_random, num_envs=3, num_steps=250)
    assert data.size == 750
    ends = ds.episode_ends(data)
    # Pendulum: time limit 200, no terminals; each env's stream is cut at its end (rows 249, 499, 749)
    assert not data.terminals.any()
    np.testing.assert_array_equal(np.flatnonzero(ends), [199, 249, 449, 499, 699, 749])
    np.testing.assert_array_equal(stream_breaks(data), np.flatnonzero(ends)[:-1])  # breaks exactly at the ends
    np.testing.assert_array_equal(ds.episode_returns(data).shape, (6,))


def test_replay_dataset_recovers_episodes_from_a_step_major_buffer():
    data = tu.pendulum_rollouts(jax.random.key(1), tu.uniform_random, num_envs=2, num_steps=300)
    # the SAC buffer writes step t of env n at row t * N + n
    per_env = lambda x: x.reshape((2, 300) + x.shape[1:])  # noqa: E731
    step_major = lambda x: np.swapaxes(per_env(x), 0, 1).reshape((600,) + x.shape[1:])  # noqa: E731
    buf = sac.Transition(obs=step_major(data.observations), action=step_major(data.actions),
                         reward=step_major(data.rewards), terminated=step_major(data.terminals).astype(np.float32),
                         next_obs=step_major(data.next_observations))
    back = generate.replay_dataset(buf, 600, 2)
    for name in ds.FIELDS:
        np.testing.assert_array_equal(getattr(back, name), getattr(data, name), err_msg=name)
    part = generate.replay_dataset(buf, 260, 2)  # the first 130 steps of each env
    np.testing.assert_array_equal(part.observations[:130], data.observations[:130])
    np.testing.assert_array_equal(np.flatnonzero(ds.episode_ends(part)), [129, 259])


def test_reference_returns_estimate_the_policy_on_its_own_data():
    """The normalised score of a policy's own dataset is ~100 when it is the expert reference and ~0 when
    it is the random one: references and data are independent samples of the same policies."""
    env, params = envs.make("Pendulum-v1")
    ret = jax.jit(lambda k, w: generate.policy_return(k, tu.mixed_controller(w), env, params, 64))
    rows = jax.jit(lambda k, w: generate.rollout_rows(k, tu.mixed_controller(w), env, params, num_envs=16,
                                                      num_steps=800))
    r_expert, r_random = float(ret(jax.random.key(2), 1.0)), float(ret(jax.random.key(3), 0.0))
    assert r_expert > r_random + 500  # the two policies are far apart, so the check below has power
    for weight, target in ((1.0, 100.0), (0.0, 0.0)):
        returns = ds.episode_returns(generate.rows_to_dataset(rows(jax.random.key(4), weight)))
        scores = ds.normalized_score(returns, r_random, r_expert)
        sem = scores.std() / np.sqrt(returns.size)
        ref_sem = scores.std() / np.sqrt(64)  # the references are 64-episode means of the same policies
        assert abs(scores.mean() - target) < 3 * np.hypot(sem, ref_sem), (target, scores.mean(), sem)


@pytest.fixture(scope="module")
def tiny_generator():
    return generate.make_generator(TINY)


@pytest.fixture(scope="module")
def tiny_levels(tiny_generator):
    return generate.generate(tiny_generator, 0, progress=lambda _: None)


def test_generate_levels_fit_together(tiny_levels):
    levels = tiny_levels
    assert set(levels) == set(generate.LEVELS)
    med, exp, mix = levels["medium"][0], levels["expert"][0], levels["medium-expert"][0]
    for name in ds.FIELDS:
        np.testing.assert_array_equal(getattr(mix, name), np.concatenate([getattr(med, name), getattr(exp, name)]))
    meta = levels["medium"][1]
    assert meta["policy_env_steps"] > TINY.sac_config.learning_starts  # medium is a trained checkpoint
    assert levels["medium-replay"][0].size == meta["policy_env_steps"]  # the buffer up to it
    assert meta["ref_min_return"] == pytest.approx(meta["checkpoint_returns"][0])
    assert meta["ref_max_return"] == pytest.approx(meta["checkpoint_returns"][-1])
    for level, (data, _) in levels.items():
        ds.check(data, what=level)
        breaks, ends = stream_breaks(data), np.flatnonzero(ds.episode_ends(data))
        assert set(breaks) <= set(ends), level  # rows never run into another episode without an end flag


def test_generate_is_deterministic_in_the_seed(tiny_generator, tiny_levels):
    again = generate.generate(tiny_generator, 0, progress=lambda _: None)
    for level in generate.LEVELS:
        for name in ds.FIELDS:
            np.testing.assert_array_equal(getattr(again[level][0], name), getattr(tiny_levels[level][0], name))
