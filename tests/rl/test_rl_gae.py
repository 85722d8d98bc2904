"""GAE against a NumPy loop with terminations and truncations."""

import jax
import numpy as np
import pytest

from lfx.rl.gae import gae_advantages


def numpy_gae(r, v, nv, term, trunc, gamma, lam):
    T = len(r)
    adv = np.zeros(T)
    running = 0.0
    for t in reversed(range(T)):
        done = term[t] or trunc[t]
        if done:
            running = 0.0  # a new episode starts after t: nothing flows back across it
        bootstrap = 0.0 if term[t] else nv[t]
        delta = r[t] + gamma * bootstrap - v[t]
        running = delta + gamma * lam * running
        adv[t] = running
    return adv


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_matches_numpy_loop(seed):
    rng = np.random.default_rng(seed)
    T = 40
    r, v, nv = rng.normal(size=(3, T)).astype(np.float32)
    term = rng.random(T) < 0.1
    trunc = (~term) & (rng.random(T) < 0.1)
    adv, target = gae_advantages(
        r, v, nv, term, term | trunc, gamma=0.97, gae_lambda=0.9
    )
    ref = numpy_gae(r, v, nv, term, trunc, 0.97, 0.9)
    np.testing.assert_allclose(adv, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(target, ref + v, rtol=1e-5, atol=1e-5)


def test_truncation_bootstraps_and_termination_does_not():
    r = np.zeros(1, np.float32)
    v = np.zeros(1, np.float32)
    nv = np.ones(1, np.float32)
    trunc_adv, _ = gae_advantages(r, v, nv, np.array([False]), np.array([True]), gamma=0.5, gae_lambda=1.0)
    term_adv, _ = gae_advantages(r, v, nv, np.array([True]), np.array([True]), gamma=0.5, gae_lambda=1.0)
    assert float(trunc_adv[0]) == pytest.approx(0.5)
    assert float(term_adv[0]) == 0.0


def test_lambda_one_gives_discounted_return_minus_value():
    rng = np.random.default_rng(0)
    T, gamma = 12, 0.9
    r = rng.normal(size=T).astype(np.float32)
    v = rng.normal(size=T).astype(np.float32)
    nv = np.append(v[1:], 0.0).astype(np.float32)
    term = np.zeros(T, bool)
    term[-1] = True
    adv, _ = jax.jit(lambda *a: gae_advantages(*a, gamma=gamma, gae_lambda=1.0))(r, v, nv, term, term)
    mc = np.array([sum(gamma ** (k - t) * r[k] for k in range(t, T)) for t in range(T)])
    np.testing.assert_allclose(adv, mc - v, rtol=1e-4, atol=1e-4)
