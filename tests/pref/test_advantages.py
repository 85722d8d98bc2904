"""Rewards and advantages of online RLHF against NumPy loops transcribed from TRL's trainers."""

import numpy as np
import pytest

from lfx.pref import advantages as adv


def _batch(seed=0, B=5, K=7):
    rng = np.random.default_rng(seed)
    lengths = np.array([K, 1, 3, K - 1, 4])[:B]
    mask = (np.arange(K)[None] < lengths[:, None]).astype(np.float32)
    return rng, mask, lengths


def _trl_gae(rewards, values, gamma, lam):
    """TRL PPOTrainer's loop (values and rewards already zero past the response)."""
    B, K = rewards.shape
    last = np.zeros(B)
    out = []
    for t in reversed(range(K)):
        nxt = values[:, t + 1] if t < K - 1 else 0.0
        delta = rewards[:, t] + gamma * nxt - values[:, t]
        last = delta + gamma * lam * last
        out.append(last)
    a = np.stack(out[::-1], 1)
    return a, a + values


def test_kl_penalised_token_rewards_put_the_score_on_the_last_token():
    rng, mask, lengths = _batch()
    logp, ref = rng.normal(size=mask.shape), rng.normal(size=mask.shape)
    s = rng.normal(size=len(lengths))
    expect = -0.1 * (logp - ref) * mask
    for b, n in enumerate(lengths):
        expect[b, n - 1] += s[b]  # TRL: rewards[[arange(B), sequence_lengths]] += scores
    np.testing.assert_allclose(adv.kl_penalised_token_rewards(s, logp, ref, mask, 0.1), expect,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.9, 0.5), (1.0, 1.0)])
def test_token_gae_matches_trl_loop(gamma, lam):
    rng, mask, _ = _batch(1)
    r = rng.normal(size=mask.shape) * mask
    v = rng.normal(size=mask.shape) * mask
    a, ret = adv.token_gae(r, v, mask, gamma=gamma, lam=lam)
    a_np, ret_np = _trl_gae(r, v, gamma, lam)
    np.testing.assert_allclose(a, a_np * mask, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, ret_np * mask, rtol=1e-5, atol=1e-5)
    # gamma = lam = 1 with zero values: the advantage is the reward-to-go
    a1, _ = adv.token_gae(r, 0 * v, mask, gamma=1.0, lam=1.0)
    np.testing.assert_allclose(a1, np.cumsum(r[:, ::-1], 1)[:, ::-1] * mask, rtol=1e-5,
                               atol=1e-5)


def test_masked_whiten_matches_trl():
    rng, mask, _ = _batch(2)
    x = rng.normal(size=mask.shape) * 3 + 1
    m = mask.astype(bool)
    mean = x[m].mean()
    var = ((x[m] - mean) ** 2).mean() * m.sum() / (m.sum() - 1)
    expect = (x - mean) / np.sqrt(var + 1e-8) * mask
    np.testing.assert_allclose(adv.masked_whiten(x, mask), expect, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(adv.masked_whiten(x, mask, shift_mean=False),
                               (expect + mean) * mask, rtol=1e-5, atol=1e-5)


def test_group_relative_advantages_match_torch_std():
    s = np.random.default_rng(3).normal(size=(4, 6))
    expect = (s - s.mean(1, keepdims=True)) / (s.std(1, ddof=1, keepdims=True) + 1e-4)
    np.testing.assert_allclose(adv.group_relative_advantages(s), expect, rtol=1e-5)
    np.testing.assert_allclose(adv.group_relative_advantages(s, scale=False),
                               s - s.mean(1, keepdims=True), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(adv.group_relative_advantages(np.ones((2, 4))), 0.0)


def test_leave_one_out_advantages_match_a_loop():
    R = np.random.default_rng(0).normal(size=(3, 5))
    expect = np.array([[R[m, i] - np.mean(np.delete(R[m], i)) for i in range(5)]
                       for m in range(3)])
    np.testing.assert_allclose(adv.leave_one_out_advantages(R), expect, rtol=1e-6)
    np.testing.assert_allclose(adv.leave_one_out_advantages(np.ones((2, 4))), 0.0)


def test_k3_is_an_unbiased_non_negative_kl_estimate():
    """E_{y~p}[k3] = KL(p || q) exactly (enumerating a categorical), and k3 >= 0 pointwise."""
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(6))
    q = rng.dirichlet(np.ones(6))
    k3 = np.asarray(adv.k3_kl(np.log(p), np.log(q)))
    assert (k3 >= 0).all()
    np.testing.assert_allclose(np.sum(p * k3), np.sum(p * np.log(p / q)), rtol=1e-5)
    np.testing.assert_allclose(adv.k3_kl(np.log(p), np.log(p)), 0.0, atol=1e-7)


def test_rto_token_rewards_clip_beta_log_ratio():
    rng, mask, _ = _batch(5)
    dpo, ref = rng.normal(size=mask.shape), rng.normal(size=mask.shape)
    expect = np.clip(0.05 * (dpo - ref), -0.05, 0.05) * mask
    np.testing.assert_allclose(adv.rto_token_rewards(dpo, ref, mask, beta=0.05, clip=0.05),
                               expect, rtol=1e-5, atol=1e-7)
    assert np.abs(expect).max() == pytest.approx(0.05)  # the clip binds somewhere


def test_aggregations():
    rng, mask, lengths = _batch(6)
    x = rng.normal(size=mask.shape)
    m = mask
    np.testing.assert_allclose(adv.aggregate(x, m, "sequence_mean"),
                               np.mean((x * m).sum(1) / lengths), rtol=1e-5)
    np.testing.assert_allclose(adv.aggregate(x, m, "token_mean"), (x * m).sum() / m.sum(),
                               rtol=1e-5)
    np.testing.assert_allclose(adv.aggregate(x, m, "sequence_sum"), np.mean((x * m).sum(1)),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="Unknown aggregation"):
        adv.aggregate(x, m, "mean")


def test_segment_rewards_pay_each_segment_at_its_end():
    rng, mask, lengths = _batch(7)
    c = rng.normal(size=mask.shape).astype(np.float32)
    S = 3
    expect = np.zeros_like(c)
    for b, n in enumerate(lengths):
        for start in range(0, n, S):
            end = min(start + S, n)
            expect[b, end - 1] = c[b, start:end].sum()
    out = np.asarray(adv.segment_rewards(c, mask, S))
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.sum(1), (c * mask).sum(1), rtol=1e-5, atol=1e-6)
