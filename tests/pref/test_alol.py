"""A-LoL (`lfx.pref.alol`): the loss against a NumPy transcription of the authors' code, and its
identities (pure functions, no training)."""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.pref import alol
from lfx.pref.objectives import PairBatch
from lfx.pref.sequence import SequenceLogps

B, K, EPS, BETA = 6, 5, 0.9, 0.2


# ------------------------------------------------- the authors' code, transcribed to NumPy
# github.com/abaheti95/LoL-RL, train_generation_task_with_off_policy_PG.py L611-711 and
# lolrl_qlora_llama_hh.py L756-962. Their `per_token_log_probs` are NEGATIVE log-probs (NLL).
def authors_loss(nll, base_nll, mask, rewards, values, algorithm, ppo_clip, kl_beta):
    """torch.mean(per_response_loss) of the authors' training step (gen script; hh agrees)."""
    if algorithm in ("nll", "wbc"):
        per = np.sum(nll * mask, 1)
        if algorithm == "wbc":
            per = per * rewards
        return np.mean(per)
    if algorithm == "r_gold":
        probs = np.exp(-nll)
        lower = np.maximum(probs, 0.1)
        return np.mean(np.sum(nll * lower * mask, 1) * rewards)
    if algorithm == "a_lol_seq":
        w = np.exp(base_nll - nll) * mask
        if ppo_clip is not None:
            w = np.clip(w, 1 - ppo_clip, 1 + ppo_clip) * mask
        per_is = np.sum(nll * w * mask, 1)
    elif algorithm in ("r_lol", "a_lol"):
        w = np.exp(np.sum(base_nll * mask, 1) - np.sum(nll * mask, 1))
        if ppo_clip is not None:
            w = np.clip(w, 1 - ppo_clip, 1 + ppo_clip)
        per_is = w * np.sum(nll * mask, 1)
    else:  # a_lol_ref_free, a_lol_kl
        per_is = 1.0 * np.sum(nll * mask, 1)
    if algorithm.startswith("a_lol"):
        adv = np.maximum(rewards - values, 0.0)
        per = per_is * adv
        if algorithm == "a_lol_kl":
            per = per + kl_beta * (np.sum(base_nll * mask, 1) - per_is)
    else:
        per = per_is * rewards
    return np.mean(per)


def worked_values(seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array([5, 3, 1, 4, 5, 2])
    mask = (np.arange(K)[None] >= K - lengths[:, None]).astype(np.float32)  # responses end last
    logp = np.log(rng.uniform(0.05, 0.95, (B, K))).astype(np.float32) * mask
    # reference log-probs: per-token ratios from ~0.3 to ~3 (some clipped at [0.1, 1.9], some not)
    ref = (logp + rng.normal(0.0, 0.8, (B, K)).astype(np.float32)) * mask
    ref = np.minimum(ref, 0.0)
    rewards = rng.uniform(0.0, 1.0, B).astype(np.float32)
    values = rng.uniform(0.0, 1.0, B).astype(np.float32)  # some advantages negative
    return logp, ref, mask, rewards, values


@pytest.mark.parametrize("variant", alol.VARIANTS)
@pytest.mark.parametrize("clip", [EPS, 0.2, None])
def test_matches_authors_code(variant, clip):
    logp, ref, mask, rewards, values = worked_values()
    if variant == "a_lol_kl" and clip is not None:
        pytest.skip("a_lol_kl has no importance weight (the authors assert ppo_clip == 0)")
    weights = rewards - values if variant in alol.ADVANTAGE_VARIANTS else rewards
    # per-token inputs for every variant; sequence inputs where the variant allows them
    inputs = [(logp, ref)]
    if variant not in alol.TOKEN_VARIANTS:
        inputs.append((logp.sum(-1), ref.sum(-1)))
    expected = authors_loss(-logp.astype(np.float64), -ref.astype(np.float64), mask,
                            rewards.astype(np.float64), values.astype(np.float64), variant,
                            clip, BETA)
    for lp, rp in inputs:
        got = jnp.mean(alol.alol_loss(jnp.asarray(lp), jnp.asarray(rp), jnp.asarray(weights),
                                      variant=variant, clip=clip, kl_beta=BETA))
        np.testing.assert_allclose(float(got), expected, rtol=1e-6, atol=1e-6)
    assert (rewards - values < 0).any() and (rewards - values > 0).any()


def test_worked_values_exercise_clipping():
    logp, ref, mask, _, _ = worked_values()
    seq_ratio = np.exp(logp.sum(-1) - ref.sum(-1))
    tok_ratio = np.exp(logp - ref)[mask > 0]
    for r in (seq_ratio, tok_ratio):
        assert (r > 1 + EPS).any() and ((r > 1 - EPS) & (r < 1 + EPS)).any()
    assert (tok_ratio < 1 - 0.2).any() and (seq_ratio < 1 - 0.2).any()


# ------------------------------------------------------------------------------- identities
def _grad(variant, lp, ref, adv, clip=EPS, kl_beta=0.0):
    return jax.grad(lambda x: jnp.sum(alol.alol_loss(x, ref, adv, variant=variant, clip=clip,
                                                     kl_beta=kl_beta)))(lp)


def test_at_reference_weight_one_and_gradient_is_advantage_weighted_nll():
    logp, _, mask, rewards, values = worked_values(1)
    lp = jnp.asarray(logp)
    adv = jnp.asarray(rewards - values)
    assert np.allclose(alol.clipped_weight(jnp.zeros(B), EPS), 1.0)
    ref_free = _grad("a_lol_ref_free", lp, None, adv)
    nll = jax.grad(lambda x: jnp.sum(-jnp.maximum(adv, 0.0) * x.sum(-1)))(lp)  # A+ * NLL
    np.testing.assert_allclose(ref_free, nll, rtol=1e-6, atol=1e-7)
    for variant in ("a_lol", "a_lol_seq", "a_lol_kl"):  # pi = pi_ref: all equal the ref-free one
        g = _grad(variant, lp, lp, adv, kl_beta=BETA if variant == "a_lol_kl" else 0.0)
        if variant == "a_lol_kl":  # + beta grad log pi of every response (the KL estimate)
            g = g - BETA * jnp.asarray(mask)
        np.testing.assert_allclose(g * mask, ref_free * mask, rtol=1e-6, atol=1e-7)


def test_clipping_gives_the_clipped_weight():
    log_ratio = jnp.array([-50.0, np.log(0.05), np.log(0.5), 0.0, np.log(1.5), np.log(3.0), 50.0])
    expected = np.array([0.1, 0.1, 0.5, 1.0, 1.5, 1.9, 1.9])
    np.testing.assert_allclose(alol.clipped_weight(log_ratio, EPS), expected, rtol=1e-6)
    np.testing.assert_allclose(alol.clipped_weight(log_ratio, 0.2),
                               np.clip(expected, 0.8, 1.2), rtol=1e-6)
    # the weighted loss: -A * w * log pi with the clipped w, and d/dlog pi = -A * w
    lp = jnp.full((7,), -2.0)
    adv = jnp.ones(7)
    per = alol.alol_loss(lp, lp - log_ratio, adv, variant="a_lol", clip=EPS)
    np.testing.assert_allclose(per, 2.0 * expected, rtol=1e-6)
    np.testing.assert_allclose(_grad("a_lol", lp, lp - log_ratio, adv), -expected, rtol=1e-6)


def test_negative_advantages_are_dropped():
    logp, ref, _, _, _ = worked_values(2)
    adv = jnp.array([-1.0, -0.1, 0.0, 0.3, -2.0, 0.7])
    for variant in ("a_lol", "a_lol_ref_free", "a_lol_seq"):
        per = alol.alol_loss(jnp.asarray(logp), jnp.asarray(ref), adv, variant=variant, clip=EPS)
        g = _grad(variant, jnp.asarray(logp), jnp.asarray(ref), adv)
        drop = np.asarray(adv) <= 0
        assert np.all(np.asarray(per)[drop] == 0.0) and np.all(np.asarray(g)[drop] == 0.0)
        assert np.all(np.asarray(per)[~drop] > 0.0)


def test_flipping_the_sign_flips_the_gradient():
    logp, ref, mask, _, _ = worked_values(3)
    lp, rp = jnp.asarray(logp), jnp.asarray(ref)
    r = jnp.asarray(np.random.default_rng(3).uniform(0.1, 1.0, B).astype(np.float32))
    for variant in ("r_lol", "wbc", "r_gold"):  # rewards are not clamped: the gradient flips
        np.testing.assert_allclose(_grad(variant, lp, rp, -r), -_grad(variant, lp, rp, r),
                                   rtol=1e-6)
    for variant in ("a_lol", "a_lol_ref_free", "a_lol_seq"):  # ascent on log pi for A > 0
        g = np.asarray(_grad(variant, lp, rp, r))
        assert np.all(g[mask > 0] < 0)  # minimising raises log pi of positive-advantage data
        assert np.all(np.asarray(_grad(variant, lp, rp, -r)) == 0)  # A < 0: dropped, no push


def test_finite_at_large_log_ratios():
    lp = jnp.array([[-1e-3, -80.0, -1.0], [-60.0, -0.5, -90.0]])
    rp = jnp.array([[-90.0, -1e-4, -50.0], [-1e-3, -70.0, -1e-5]])
    adv = jnp.array([0.5, 2.0])
    for variant in alol.VARIANTS:
        for clip in (EPS, 0.2):
            per = alol.alol_loss(lp, rp, adv, variant=variant, clip=clip, kl_beta=BETA)
            g = _grad(variant, lp, rp, adv, clip=clip, kl_beta=BETA)
            assert np.all(np.isfinite(per)) and np.all(np.isfinite(g)), variant


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Unknown A-LoL variant"):
        alol.alol_loss(jnp.zeros(3), jnp.zeros(3), jnp.zeros(3), variant="ppo")
    with pytest.raises(ValueError, match="per-token"):
        alol.alol_loss(jnp.zeros(3), jnp.zeros(3), jnp.zeros(3), variant="a_lol_seq")
    with pytest.raises(ValueError, match="ref_logps"):
        alol.alol_loss(jnp.zeros(3), None, jnp.zeros(3), variant="a_lol")


# ------------------------------------------------------------------------- the objective
class _HP:
    alol_clip = EPS
    alol_kl_beta = BETA


def _pair_batch(logp, ref, mask):
    def seq(t, m):
        t, count = jnp.asarray(t), jnp.asarray(m).sum(-1)
        return SequenceLogps(sum=t.sum(-1), mean=t.sum(-1) / count, count=count, token=t)
    h = B // 2
    batch = PairBatch(seq(logp[:h], mask[:h]), seq(logp[h:], mask[h:]), jnp.asarray(ref[:h]), jnp.asarray(ref[h:]),
                      jnp.asarray(mask[:h]), jnp.asarray(mask[h:]), None, None)
    return batch


def test_pair_advantages_and_objective():
    a_c, a_r, v = alol.pair_advantages(jnp.array([0.5, -0.2]), jnp.array([0.1, 0.4]))
    np.testing.assert_allclose(a_c, [0.2, -0.3], rtol=1e-6)
    np.testing.assert_allclose(a_r, -np.asarray(a_c), rtol=1e-6)
    np.testing.assert_allclose(v, [0.3, 0.1], rtol=1e-6)

    logp, ref, mask, rewards, _ = worked_values(4)
    batch = _pair_batch(logp, ref, mask)
    h = B // 2
    rc, rr = jnp.asarray(rewards[:h]), jnp.asarray(rewards[h:])
    obj = alol.ALOL_OBJECTIVES["alol"]
    with pytest.raises(ValueError, match="rewards"):
        obj.loss({}, batch, _HP(), None)
    # a PairBatch that carries rewards (the recipe change this objective needs)
    extra = tuple(f for f in ("chosen_reward", "rejected_reward") if f not in PairBatch._fields)
    RewardPairBatch = collections.namedtuple("RewardPairBatch", PairBatch._fields + extra)
    batch_r = RewardPairBatch(**{**batch._asdict(), "chosen_reward": rc, "rejected_reward": rr})
    loss, metrics = obj.loss({}, batch_r, _HP(), None)
    a_c, a_r, _ = alol.pair_advantages(rc, rr)
    v = 0.5 * (rewards[:h] + rewards[h:])
    expected = authors_loss(-logp, -ref, mask, rewards, np.concatenate([v, v]), "a_lol", EPS, 0.0)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6, atol=1e-7)
    assert set(metrics) >= {"train/loss", "train/advantage", "train/importance_weight"}
    assert set(alol.ALOL_OBJECTIVES) == {"alol", "alol_ref_free", "alol_seq", "alol_kl", "rlol",
                                         "wbc", "rgold"}
