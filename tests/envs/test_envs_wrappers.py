"""Wrappers against raw gymnax stepping and NumPy running statistics."""

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.envs import wrappers


def _rollout(env, params, steps, seed=0, action_fn=None):
    key = jax.random.key(seed)
    key, k = jax.random.split(key)
    obs, state = env.reset(k, params)
    out = []
    for t in range(steps):
        key, k = jax.random.split(key)
        action = action_fn(t) if action_fn else t % 2
        obs, state, reward, term, trunc, info = env.step(k, state, action, params)
        out.append((np.asarray(obs), float(reward), bool(term), bool(trunc), info))
    return out


def test_episode_statistics_matches_raw_gymnax_and_sums_rewards():
    raw, params = gymnax.make("CartPole-v1")
    params = params.replace(max_steps_in_episode=30)
    wrapped = wrappers.EpisodeStatistics(raw)
    ref = _rollout(raw, params, 80, action_fn=lambda t: (t // 3) % 2)
    got = _rollout(wrapped, params, 80, action_fn=lambda t: (t // 3) % 2)
    ep_return, finished = 0.0, []
    for (o1, r1, te1, tr1, _), (o2, r2, te2, tr2, info) in zip(ref, got):
        np.testing.assert_array_equal(o1, o2)
        assert (r1, te1, tr1) == (r2, te2, tr2)
        ep_return += r1
        assert bool(info["episode_done"]) == (te1 or tr1)
        if te1 or tr1:
            finished.append(ep_return)
            assert float(info["episode_return"]) == pytest.approx(ep_return)
            ep_return = 0.0
        else:
            assert float(info["episode_return"]) == 0.0
    assert len(finished) >= 2


def _np_running_stats(xs):
    mean, var, count = np.zeros_like(xs[0]), np.ones_like(xs[0]), 1e-4
    out = []
    for x in xs:
        delta = x - mean
        tot = count + 1
        new_mean = mean + delta / tot
        m2 = var * count + delta**2 * count / tot
        mean, var, count = new_mean, m2 / tot, tot
        out.append((mean.copy(), var.copy()))
    return out


def test_normalize_observation_matches_numpy_running_statistics():
    raw, params = gymnax.make("CartPole-v1")
    env = wrappers.NormalizeObservation(raw)
    ref = _rollout(raw, params, 40)
    got = _rollout(env, params, 40)
    key = jax.random.key(0)
    _, k = jax.random.split(key)
    obs0, _ = raw.reset(k, params)
    xs = [np.asarray(obs0, np.float64)] + [o for o, *_ in ref]
    stats = _np_running_stats(xs)
    for t, (o, *_rest) in enumerate(got):
        mean, var = stats[t + 1]
        np.testing.assert_allclose(o, (xs[t + 1] - mean) / np.sqrt(var + 1e-8), rtol=2e-4, atol=2e-5)


def test_normalize_reward_scales_by_discounted_return_std():
    raw, params = gymnax.make("CartPole-v1")
    params = params.replace(max_steps_in_episode=15)
    env = wrappers.NormalizeReward(raw, gamma=0.9)
    got = _rollout(env, params, 40)
    ref = _rollout(raw, params, 40)
    g, stats, returns = 0.0, [], []
    for _, r, te, tr, _ in ref:
        g = g * 0.9 + r
        returns.append(np.array(g))
        if te or tr:
            g = 0.0
    stats = _np_running_stats(returns)
    for t, (_, r_scaled, *_r) in enumerate(got):
        assert r_scaled == pytest.approx(ref[t][1] / np.sqrt(stats[t][1] + 1e-8), rel=1e-4)


def test_clip_action_clips_to_the_action_space():
    raw, params = gymnax.make("Pendulum-v1")
    env = wrappers.ClipAction(raw)
    key = jax.random.key(3)
    _, state = raw.reset(key, params)
    big = env.step(key, state, jnp.array([50.0]), params)
    edge = raw.step(key, state, jnp.array([2.0]), params)
    np.testing.assert_allclose(big[0], edge[0])
    np.testing.assert_allclose(big[2], edge[2])


def test_flatten_observation():
    raw, params = gymnax.make("Breakout-MinAtar")
    env = wrappers.FlattenObservation(raw)
    key = jax.random.key(0)
    obs, state = env.reset(key, params)
    ref, _ = raw.reset(key, params)
    np.testing.assert_array_equal(obs, np.asarray(ref).reshape(-1))
    assert env.observation_space(params).shape == (int(np.prod(ref.shape)),)
    nobs, *_ = env.step(key, state, 0, params)
    assert nobs.shape == obs.shape


def test_pooled_statistics_equal_those_of_the_concatenated_batch():
    """update_batch over a named vmap axis == the plain statistics of every lane's samples."""
    rng = np.random.default_rng(0)
    batches = [rng.normal(2.0, 3.0, size=(16, 3)).astype(np.float32) for _ in range(5)]

    def fold(stats, x):
        return jax.vmap(lambda s, xi: s.update_batch(xi, "envs"), in_axes=(0, 0),
                        axis_name="envs")(stats, x), None

    stats = jax.vmap(lambda _: wrappers.RunningMeanStd.create((3,)))(jnp.arange(16))
    for x in batches:
        stats, _ = fold(stats, jnp.asarray(x))
    every = np.concatenate(batches)
    # every lane holds the same statistics
    np.testing.assert_allclose(np.ptp(np.asarray(stats.mean), axis=0), 0.0, atol=1e-6)
    # count 1e-4 (epsilon at mean 0, var 1) + 80 samples, pooled exactly (Chan's update)
    eps = 1e-4
    n = every.shape[0]
    mean = every.sum(0) / (n + eps)
    m2 = eps * 1.0 + ((every - every.mean(0)) ** 2).sum(0) + eps * n / (n + eps) * every.mean(0) ** 2
    np.testing.assert_allclose(stats.mean[0], mean, rtol=1e-5)
    np.testing.assert_allclose(stats.var[0], m2 / (n + eps), rtol=1e-4)
    np.testing.assert_allclose(stats.count[0], n + eps, rtol=1e-6)


def test_pooled_normalize_observation_shares_one_normalisation_over_the_batch():
    """With axis_name, every env of a vmapped batch is normalised by the batch's statistics."""
    raw, params = gymnax.make("CartPole-v1")
    env = wrappers.NormalizeObservation(raw, axis_name=wrappers.ENV_AXIS)
    keys = jax.random.split(jax.random.key(1), 8)
    reset = jax.vmap(env.reset, in_axes=(0, None), axis_name=wrappers.ENV_AXIS)
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None), axis_name=wrappers.ENV_AXIS)
    raw_reset = jax.vmap(raw.reset, in_axes=(0, None))
    raw_step = jax.vmap(raw.step, in_axes=(0, 0, 0, None))
    obs, state = reset(keys, params)
    raw_obs, raw_state = raw_reset(keys, params)
    seen = [np.asarray(raw_obs, np.float64)]
    for t in range(6):
        actions = jnp.arange(8) % 2
        ks = jax.random.split(jax.random.key(10 + t), 8)
        obs, state, *_ = step(ks, state, actions, params)
        raw_obs, raw_state, *_ = raw_step(ks, raw_state, actions, params)
        seen.append(np.asarray(raw_obs, np.float64))
    stats = wrappers.observation_stats(state)
    every = np.concatenate(seen)
    np.testing.assert_allclose(stats.mean[3], every.sum(0) / (len(every) + 1e-4), rtol=1e-4, atol=1e-6)
    expected = wrappers.normalize(jax.tree.map(lambda x: x[0], stats), raw_obs)
    np.testing.assert_allclose(obs, expected, rtol=1e-4, atol=1e-5)
