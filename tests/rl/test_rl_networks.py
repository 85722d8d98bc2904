"""The actor-critic's action distributions: brax's tanh-squashed Gaussian against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.rl.networks import MIN_STD, ActorCritic, Policy, tanh_log_det_jacobian


def _np_tanh_normal_logp(u, mean, std):
    """log density of a = tanh(u), u ~ N(mean, std^2), summed over dims (change of variables)."""
    logn = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    return np.sum(logn - np.log(1.0 - np.tanh(u) ** 2), axis=-1)


def test_tanh_log_det_jacobian_is_log_one_minus_tanh_squared():
    u = np.linspace(-4, 4, 17)
    np.testing.assert_allclose(tanh_log_det_jacobian(jnp.asarray(u)), np.log(1 - np.tanh(u) ** 2),
                               rtol=1e-5, atol=1e-5)
    assert np.isfinite(tanh_log_det_jacobian(jnp.float32(30.0)))  # stable where tanh saturates


def test_squashed_log_prob_and_entropy_match_numpy():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(3, 2)).astype(np.float32)
    std = np.exp(rng.normal(scale=0.5, size=(3, 2))).astype(np.float32)
    pi = Policy(mean=jnp.asarray(mean), log_std=jnp.log(jnp.asarray(std)), squash=True)
    u = rng.normal(size=(3, 2)).astype(np.float32)
    np.testing.assert_allclose(pi.log_prob(jnp.asarray(u)), _np_tanh_normal_logp(u, mean, std), rtol=1e-5)
    # entropy of a = tanh(u): Monte Carlo -E[log p(a)] with 1M samples (standard error about 0.003)
    z = rng.normal(size=(1_000_000, 3, 2))
    us = mean + std * z
    mc = -np.mean(_np_tanh_normal_logp(us, mean, std), axis=0)
    np.testing.assert_allclose(pi.entropy(), mc, atol=0.015)
    # the squashed entropy is below the Gaussian's (tanh contracts), by the E[log(1 - tanh^2)] term
    plain = Policy(mean=pi.mean, log_std=pi.log_std)
    assert np.all(np.asarray(pi.entropy()) < np.asarray(plain.entropy()))
    np.testing.assert_allclose(pi.mode(), np.tanh(mean), rtol=1e-6)
    np.testing.assert_allclose(pi.to_env(jnp.asarray(u)), np.tanh(u), rtol=1e-6)


def test_tanh_normal_head_uses_softplus_scale_with_brax_min_std():
    net = ActorCritic(action_dim=2, discrete=False, action_dist="tanh_normal", hidden_sizes=(8,),
                      value_hidden_sizes=(16, 16))
    params = net.init(jax.random.key(0), jnp.zeros(3))
    # the critic has its own widths
    assert params["params"]["critic_torso"]["Dense_1"]["kernel"].shape == (16, 16)
    assert params["params"]["Dense_0"]["kernel"].shape == (8, 4)  # [mean, s] per action dim
    obs = jnp.array([0.5, -1.0, 2.0])
    pi, _ = net.apply(params, obs)
    out = net.apply(params, obs, method=lambda m, o: m.__call__(o))[0]
    head = params["params"]["Dense_0"]
    torso = params["params"]["actor_torso"]["Dense_0"]
    h = np.tanh(np.asarray(obs) @ np.asarray(torso["kernel"]) + np.asarray(torso["bias"]))
    raw = h @ np.asarray(head["kernel"]) + np.asarray(head["bias"])
    np.testing.assert_allclose(out.mean, raw[:2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.exp(pi.log_std), np.log1p(np.exp(raw[2:])) + MIN_STD, rtol=1e-5)
    assert net.apply(params, obs, method="act") == pytest.approx(np.tanh(raw[:2]), rel=1e-5)
