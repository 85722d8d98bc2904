"""lfx.offline.losses against NumPy transcriptions of the reference code, worked examples and identities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.offline import losses

PI = np.array([[0.5, -0.2], [0.1, 0.9], [-0.7, 0.3]], np.float32)  # [B=3, A=2]
A = np.array([[0.4, 0.0], [0.3, 1.0], [-0.5, -0.1]], np.float32)
Q = np.array([1.5, -0.5, 2.0], np.float32)  # [B]


# --- NumPy references, transcribed from the public code named in each docstring. ---------------


def np_td3_bc_actor_loss(q, pi, a, alpha):
    """sfujim/TD3_BC TD3_BC.py: lmbda = alpha / Q.abs().mean().detach(); -lmbda * Q.mean() + F.mse_loss(pi, a)."""
    lmbda = alpha / np.abs(q).mean()
    return -lmbda * q.mean() + np.mean((pi - a) ** 2)


def np_rebrac_actor_loss(q, pi, a, beta):
    """CORL rebrac.py update_actor: bc_penalty = ((actions - batch_actions)**2).sum(-1);
    lmbda = 1 / |q|.mean(); loss = (beta * bc_penalty - lmbda * q).mean()."""
    bc_penalty = ((pi - a) ** 2).sum(-1)
    lmbda = 1.0 / np.abs(q).mean()
    return (beta * bc_penalty - lmbda * q).mean()


def np_rebrac_target(next_q, next_pi, next_a, r, d, gamma, beta):
    """CORL rebrac.py update_critic: next_q = min(0) - beta * bc_penalty; r + (1 - d) * gamma * next_q."""
    bc_penalty = ((next_pi - next_a) ** 2).sum(-1)
    return r + (1 - d) * gamma * (next_q.min(0) - beta * bc_penalty)


def np_expectile(diff, expectile):
    """ikostrikov critic.py loss: weight = where(diff > 0, expectile, 1 - expectile); weight * diff**2 (mean)."""
    weight = np.where(diff > 0, expectile, 1 - expectile)
    return np.mean(weight * diff**2)


# --- Behaviour cloning. ----------------------------------------------------------------------


def test_bc_loss_worked_example():
    # squared errors 0.01, 0.04, 0.04, 0.01, 0.04, 0.16 -> mean 0.3 / 6 = 0.05
    assert float(losses.bc_loss(PI, A)) == pytest.approx(0.05, rel=1e-6)


def test_bc_discrete_loss_equals_numpy_cross_entropy():
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], np.float32)
    actions = np.array([0, 1])
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -(logp[0, 0] + logp[1, 1]) / 2
    assert float(losses.bc_discrete_loss(logits, actions)) == pytest.approx(expected, rel=1e-6)


# --- TD3 / TD3+BC. ---------------------------------------------------------------------------


def test_clipped_double_q_target_worked_example():
    next_q = np.array([[1.0, 4.0, -2.0], [3.0, 2.0, -1.0]], np.float32)  # [N=2, B=3] -> min [1, 2, -2]
    r = np.array([0.5, 1.0, 0.0], np.float32)
    d = np.array([0.0, 1.0, 0.0], np.float32)
    y = losses.clipped_double_q_target(next_q, r, d, 0.9)
    np.testing.assert_allclose(np.asarray(y), [0.5 + 0.9, 1.0, -1.8], rtol=1e-6)


def test_ensemble_mse_is_a_sum_of_per_critic_mses():
    q = np.array([[1.0, 2.0], [0.0, 4.0]], np.float32)
    y = np.array([1.5, 2.0], np.float32)
    # critic 1: (0.25 + 0) / 2 = 0.125; critic 2: (2.25 + 4) / 2 = 3.125  (F.mse_loss(q1, y) + F.mse_loss(q2, y))
    assert float(losses.ensemble_mse(q, y)) == pytest.approx(3.25, rel=1e-6)
    grad = jax.grad(lambda y: losses.ensemble_mse(q, y))(jnp.asarray(y))
    np.testing.assert_array_equal(np.asarray(grad), 0.0)  # the target is stop-gradient


def test_td3_bc_actor_loss_equals_numpy_reference():
    got = losses.td3_bc_actor_loss(Q, PI, A, 2.5)
    assert float(got) == pytest.approx(np_td3_bc_actor_loss(Q, PI, A, 2.5), rel=1e-6)
    # hand: mean|Q| = 4/3, lambda = 1.875, mean Q = 1, MSE = 0.05 -> -1.875 + 0.05
    assert float(got) == pytest.approx(-1.825, rel=1e-6)


def test_td3_bc_lambda_is_stop_gradient():
    # d/dq_b of -lambda mean(q) with lambda constant is -lambda / B; differentiating through
    # lambda = alpha / mean|q| would give -alpha/B * d(mean q / mean |q|) instead.
    grad = jax.grad(lambda q: losses.td3_bc_actor_loss(q, PI, A, 2.5))(jnp.asarray(Q))
    np.testing.assert_allclose(np.asarray(grad), -1.875 / 3 * np.ones(3), rtol=1e-6)


def test_td3_bc_with_alpha_zero_is_bc_value_and_gradient():
    def td3_bc(pi):
        q = jnp.sum(pi, axis=-1) * 3.0  # any Q that depends on pi
        return losses.td3_bc_actor_loss(q, pi, A, 0.0)

    pi = jnp.asarray(PI)
    assert float(td3_bc(pi)) == pytest.approx(float(losses.bc_loss(pi, A)), rel=1e-7)
    np.testing.assert_allclose(np.asarray(jax.grad(td3_bc)(pi)),
                               np.asarray(jax.grad(lambda p: losses.bc_loss(p, A))(pi)), rtol=1e-7)


# --- ReBRAC. ---------------------------------------------------------------------------------


def test_rebrac_actor_loss_equals_numpy_reference():
    for beta in (0.0, 0.001, 0.5):
        got = losses.rebrac_actor_loss(Q, PI, A, beta)
        assert float(got) == pytest.approx(np_rebrac_actor_loss(Q, PI, A, beta), rel=1e-6)
    # hand: penalties 0.05, 0.05, 0.2 (summed over A), lambda = 0.75 -> mean(0.5*pen) - 0.75 * mean Q
    assert float(losses.rebrac_actor_loss(Q, PI, A, 0.5)) == pytest.approx(0.5 * 0.1 - 0.75, rel=1e-6)
    grad = jax.grad(lambda q: losses.rebrac_actor_loss(q, PI, A, 0.5))(jnp.asarray(Q))
    np.testing.assert_allclose(np.asarray(grad), -0.75 / 3 * np.ones(3), rtol=1e-6)  # lambda is sg


def test_rebrac_critic_target_equals_numpy_reference_and_reduces_to_td3():
    next_q = np.array([[1.0, 4.0, -2.0], [3.0, 2.0, -1.0]], np.float32)
    r = np.array([0.5, 1.0, 0.0], np.float32)
    d = np.array([0.0, 1.0, 0.0], np.float32)
    got = losses.rebrac_critic_target(next_q, PI, A, r, d, 0.99, 0.1)
    np.testing.assert_allclose(np.asarray(got), np_rebrac_target(next_q, PI, A, r, d, 0.99, 0.1), rtol=1e-6)
    # hand, first element: 0.5 + 0.99 * (1 - 0.1 * 0.05) = 1.48505
    assert float(got[0]) == pytest.approx(1.48505, rel=1e-6)
    np.testing.assert_allclose(np.asarray(losses.rebrac_critic_target(next_q, PI, A, r, d, 0.99, 0.0)),
                               np.asarray(losses.clipped_double_q_target(next_q, r, d, 0.99)), rtol=1e-7)


# --- IQL. ------------------------------------------------------------------------------------


def test_expectile_loss_equals_numpy_reference():
    diff = np.array([1.5, -0.5, 0.0, -2.0, 3.0], np.float32)
    for tau in (0.1, 0.5, 0.7, 0.9):
        assert float(losses.expectile_loss(diff, tau)) == pytest.approx(np_expectile(diff, tau), rel=1e-6)


def test_expectile_half_is_half_the_mse():
    diff = np.array([1.5, -0.5, 0.0, -2.0, 3.0], np.float32)
    assert float(losses.expectile_loss(diff, 0.5)) == pytest.approx(0.5 * np.mean(diff**2), rel=1e-6)


def test_expectile_loss_is_asymmetric_with_the_right_sign():
    # diff = Q - V > 0 (V below Q) weighs tau: a flipped sign would give 0.3 * 4.
    assert float(losses.expectile_loss(np.array([2.0], np.float32), 0.7)) == pytest.approx(0.7 * 4.0)
    assert float(losses.expectile_loss(np.array([-2.0], np.float32), 0.7)) == pytest.approx(0.3 * 4.0)


def test_expectile_regression_minimiser_is_the_upper_expectile():
    # Q in {0, 1} with equal mass: the tau-expectile v* solves (1 - tau) v = tau (1 - v), v* = tau.
    q = jnp.array([0.0, 1.0])
    v = jnp.linspace(0.0, 1.0, 1001)
    values = jax.vmap(lambda v: losses.expectile_loss(q - v, 0.7))(v)
    assert float(v[jnp.argmin(values)]) == pytest.approx(0.7, abs=1e-3)


def test_awr_weights_clip_and_stop_gradient():
    adv = jnp.array([-1.0, 0.0, 0.5, 10.0])
    w = losses.awr_weights(adv, 3.0, 100.0)
    np.testing.assert_allclose(np.asarray(w), [np.exp(-3.0), 1.0, np.exp(1.5), 100.0], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(jax.grad(lambda a: losses.awr_weights(a, 3.0, 100.0).sum())(adv)), 0.0)


def test_awr_actor_loss_and_value_target_worked_example():
    logp = jnp.array([-1.0, -2.0, 0.5])
    w = jnp.array([2.0, 0.5, 1.0])
    assert float(losses.awr_actor_loss(logp, w)) == pytest.approx(-(-2.0 - 1.0 + 0.5) / 3)
    np.testing.assert_allclose(np.asarray(jax.grad(losses.awr_actor_loss)(logp, w)), -np.asarray(w) / 3, rtol=1e-6)
    y = losses.value_target(jnp.array([1.0, 2.0]), jnp.array([0.0, 1.0]), jnp.array([10.0, 10.0]), 0.9)
    np.testing.assert_allclose(np.asarray(y), [10.0, 2.0], rtol=1e-6)
