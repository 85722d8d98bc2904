"""lfx.offline.ensemble_losses against NumPy transcriptions of the reference code and hand-worked values.

References: CORL `algorithms/offline/cql.py` (`ContinuousCQL._q_loss`), the CQL authors' Atari loss
(`atari/batch_rl/multi_head/quantile_agent.py`), the EDAC authors' `lifelong_rl/trainers/q_learning/sac.py`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.offline import ensemble_losses as el
from lfx.offline.networks import CriticEnsemble


def _np_logsumexp(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    return (m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))).squeeze(axis)


def _np_cql(q_data, q_rand, q_cur, lp_cur, q_next, lp_next, action_dim, temp=1.0, lo=-np.inf, hi=np.inf,
            importance_sample=True):
    """CORL's `_q_loss` CQL block for one critic, line by line (torch.cat order kept)."""
    if importance_sample:
        random_density = np.log(0.5**action_dim)
        cat = np.concatenate([q_rand - random_density, q_next - lp_next, q_cur - lp_cur], axis=1)
    else:
        cat = np.concatenate([q_rand, q_data[:, None], q_next, q_cur], axis=1)
    ood = _np_logsumexp(cat / temp, axis=1) * temp
    return np.mean(np.clip(ood - q_data, lo, hi))


def _cql_inputs(seed, b=5, k=3):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=b), rng.normal(size=(b, k)), rng.normal(size=(b, k)), rng.normal(size=(b, k)) - 1.0,
            rng.normal(size=(b, k)), rng.normal(size=(b, k)) - 1.0)


@pytest.mark.parametrize("temp, lo, hi, importance_sample", [
    (1.0, -np.inf, np.inf, True), (2.5, -np.inf, np.inf, True), (1.0, -0.5, 1.2, True), (0.7, -np.inf, np.inf, False),
])
def test_cql_logsumexp_penalty_matches_corl(temp, lo, hi, importance_sample):
    args = _cql_inputs(0)
    got = el.cql_logsumexp_penalty(*[jnp.asarray(a, jnp.float32) for a in args], action_dim=3, temperature=temp,
                                   clip_min=lo, clip_max=hi, importance_sample=importance_sample)
    want = _np_cql(*args, action_dim=3, temp=temp, lo=lo, hi=hi, importance_sample=importance_sample)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_cql_logsumexp_penalty_hand_worked_uniform():
    """Q = 0 and every proposal uniform on [-1, 1]^2 (log-density log 1/4): lse = log(3K * 4)."""
    b, k, a = 4, 2, 2
    zeros, logp = jnp.zeros((b, k)), jnp.full((b, k), np.log(0.25))
    got = el.cql_logsumexp_penalty(jnp.zeros(b), zeros, zeros, logp, zeros, logp, action_dim=a)
    np.testing.assert_allclose(got, np.log(2.0**a) + np.log(3 * k), rtol=1e-6)


def test_cql_logsumexp_penalty_gradients():
    """d/dq_data = -1/B; the log-densities are constants; the weights of q_random are a softmax."""
    args = [jnp.asarray(a, jnp.float32) for a in _cql_inputs(1)]
    grads = jax.grad(lambda *x: el.cql_logsumexp_penalty(*x, action_dim=3), argnums=(0, 1, 3, 5))(*args)
    b = args[0].shape[0]
    np.testing.assert_allclose(grads[0], -np.ones(b) / b, rtol=1e-6)
    np.testing.assert_array_equal(grads[2], 0.0)
    np.testing.assert_array_equal(grads[3], 0.0)
    q_data, q_rand, q_cur, lp_cur, q_next, lp_next = map(np.asarray, args)
    cat = np.concatenate([q_rand - np.log(0.5**3), q_next - lp_next, q_cur - lp_cur], axis=1)
    softmax = np.exp(cat - _np_logsumexp(cat, 1)[:, None])
    np.testing.assert_allclose(grads[1], softmax[:, :3] / b, rtol=1e-5)


def test_cql_expectation_penalty_zero_at_dataset_actions():
    """E_pi[Q] - E_D[Q] = 0 (value and critic gradient) when the policy's K actions are the dataset's."""
    critic = CriticEnsemble(num_critics=2, hidden_sizes=(8, 8))
    key_s, key_a, key_p, key_pi = jax.random.split(jax.random.key(0), 4)
    obs, actions = jax.random.normal(key_s, (6, 3)), jax.random.uniform(key_a, (6, 2), minval=-1, maxval=1)
    params = jax.jit(critic.init)(key_p, obs[0], actions[0])
    k = 4
    rep_obs = jnp.repeat(obs[:, None], k, axis=1)

    @jax.jit
    def penalty(params, policy_actions):
        q_data = critic.apply(params, obs, actions)  # [N, B]
        q_pol = critic.apply(params, rep_obs, policy_actions)  # [N, B, K]
        return jnp.sum(jax.vmap(el.cql_expectation_penalty)(q_data, q_pol))

    same = jnp.repeat(actions[:, None], k, axis=1)
    value, grads = jax.jit(jax.value_and_grad(penalty))(params, same)
    assert abs(float(value)) < 1e-6
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grads)) < 1e-6
    other = jax.random.uniform(key_pi, (6, k, 2), minval=-1, maxval=1)
    q_data = np.asarray(jax.jit(critic.apply)(params, obs, actions))
    q_pol = np.asarray(jax.jit(critic.apply)(params, rep_obs, other))
    want = sum(np.mean(q_pol[j].mean(axis=1) - q_data[j]) for j in range(2))
    np.testing.assert_allclose(penalty(params, other), want, rtol=1e-5, atol=1e-7)
    assert abs(want) > 1e-4


def test_discrete_cql_penalty_matches_atari_reference():
    rng = np.random.default_rng(2)
    q, actions = rng.normal(size=(7, 4)), rng.integers(0, 4, size=7)
    # quantile_agent.py: mean(reduce_logsumexp(q, 1)) - mean(sum(q * one_hot(a), 1))
    want = np.mean(_np_logsumexp(q, 1)) - np.mean(np.sum(q * np.eye(4)[actions], axis=1))
    np.testing.assert_allclose(el.discrete_cql_penalty(jnp.asarray(q, jnp.float32), jnp.asarray(actions)), want,
                               rtol=1e-5)
    np.testing.assert_allclose(el.discrete_cql_penalty(jnp.full((3, 5), 2.0), jnp.array([0, 3, 4])), np.log(5.0),
                               rtol=1e-6)
    peaked = 50.0 * jax.nn.one_hot(jnp.array([1, 2]), 3)
    assert float(el.discrete_cql_penalty(peaked, jnp.array([1, 2]))) < 1e-6
    assert float(el.discrete_cql_penalty(peaked, jnp.array([0, 0]))) == pytest.approx(50.0, rel=1e-6)


def test_sac_n_target_and_td_loss():
    rng = np.random.default_rng(3)
    n, b = 5, 6
    next_q, logp, r = rng.normal(size=(n, b)), rng.normal(size=b), rng.normal(size=b)
    d = (rng.uniform(size=b) < 0.3).astype(np.float64)
    gamma, alpha = 0.97, 0.3
    y = el.sac_n_target(*[jnp.asarray(x, jnp.float32) for x in (next_q, logp, r, d)], gamma=gamma, alpha=alpha)
    want = np.array([r[i] + gamma * (1 - d[i]) * (min(next_q[:, i]) - alpha * logp[i]) for i in range(b)])
    np.testing.assert_allclose(y, want, rtol=1e-5)
    y_no = el.sac_n_target(*[jnp.asarray(x, jnp.float32) for x in (next_q, logp, r, d)], gamma=gamma, alpha=alpha,
                           entropy_backup=False)
    np.testing.assert_allclose(y_no, r + gamma * (1 - d) * next_q.min(0), rtol=1e-5)
    q = rng.normal(size=(n, b))
    want_td = sum(np.mean([(q[j, i] - want[i]) ** 2 for i in range(b)]) for j in range(n))
    np.testing.assert_allclose(el.ensemble_td_loss(jnp.asarray(q, jnp.float32), y), want_td, rtol=1e-5)
    # N = 2: the sum of the two MSEs is 2N = 4 times brax's / lfx.rl.sac's 0.5 mean_{j, b}.
    np.testing.assert_allclose(el.ensemble_td_loss(jnp.asarray(q[:2]), y), 4 * 0.5 * np.mean((q[:2] - want) ** 2),
                               rtol=1e-5)


def _np_edac(grads, eps=1e-10):
    """The EDAC authors' grad_loss: normalise, transpose to [B, N, A], bij Gram, off-diagonal sum, mean / (N-1)."""
    n, b, _ = grads.shape
    g = grads / (np.linalg.norm(grads, axis=2, keepdims=True) + eps)
    g = g.transpose(1, 0, 2)
    total = 0.0
    for bb in range(b):
        for i in range(n):
            for j in range(n):
                if i != j:
                    total += g[bb, i] @ g[bb, j]
    return total / b / (n - 1)


def test_edac_diversity_matches_authors_and_limits():
    rng = np.random.default_rng(4)
    grads = rng.normal(size=(4, 5, 3))
    np.testing.assert_allclose(el.edac_diversity(jnp.asarray(grads, jnp.float32)), _np_edac(grads), rtol=1e-5)
    v = rng.normal(size=(1, 5, 3))
    aligned = np.concatenate([v, 2 * v, 0.5 * v], axis=0)  # every critic's gradient in one direction: N
    np.testing.assert_allclose(el.edac_diversity(jnp.asarray(aligned)), 3.0, rtol=1e-5)
    opposite = np.concatenate([v, -3 * v], axis=0)  # N = 2, opposite: -N / (N - 1) = -2
    np.testing.assert_allclose(el.edac_diversity(jnp.asarray(opposite)), -2.0, rtol=1e-5)
    orthogonal = np.zeros((2, 1, 2))
    orthogonal[0, 0, 0], orthogonal[1, 0, 1] = 1.0, 3.0
    assert abs(float(el.edac_diversity(jnp.asarray(orthogonal)))) < 1e-7
    with pytest.raises(ValueError, match="num_critics >= 2"):
        el.edac_diversity(jnp.ones((1, 2, 2)))


def test_edac_diversity_gradient_finite_at_a_zero_action_gradient():
    """A dead critic (dQ/da = 0) contributes nothing and no NaN (jnp.linalg.norm's gradient at 0 is NaN)."""
    grads = jnp.array([[[0.0, 0.0]], [[1.0, 2.0]], [[-1.0, 0.5]]])
    g = jax.grad(el.edac_diversity)(grads)
    assert bool(jnp.all(jnp.isfinite(g)))
    np.testing.assert_allclose(el.edac_diversity(grads), _np_edac(np.asarray(grads)), rtol=1e-5, atol=1e-6)


def test_temperature_loss_reference_and_gradient():
    logp = jnp.array([-1.0, 0.5, 2.0])
    target = -2.0
    val, grad = jax.value_and_grad(el.temperature_loss)(jnp.float32(0.3), logp, target)
    np.testing.assert_allclose(val, -np.mean(0.3 * (np.asarray(logp) + target)), rtol=1e-6)
    np.testing.assert_allclose(grad, -np.mean(np.asarray(logp) + target), rtol=1e-6)
    # entropy (-mean log pi = -0.5) above the target (-2): the gradient is positive, alpha goes down.
    assert float(grad) > 0
