"""SparsePO (lfx.pref.sparsepo): the authors' loss on worked values, its identities (TDPO1, DPO,
log 2), signs, finite gradients, and training through the recipe on the tiny task."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.lm.train import target_hidden
from lfx.pref import losses, sequence, sparsepo
from lfx.pref import recipe as rc
from lfx.pref.sequence import sequence_logps

BETA = 0.8  # the authors' IMDB / TL;DR beta


# ------------------------------------------------------------------ NumPy transcription
def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _logsigmoid(x):
    return -np.logaddexp(0.0, -x)


def authors_loss(pol_c, pol_r, ref_c, ref_r, lab_c, lab_r, lm_c, lm_r, rw_c, rw_r, klm_c, klm_r,
                 beta, l1_u=0.0, l1_d=0.0):
    """huawei-noah/HEBO SparsePO/src/trainers/sparse_trainer.py, get_batch_loss_metrics, line by
    line in NumPy (mask_on_reward = mask_on_kl = True): logits [B, K, V], labels [B, K]."""
    lp_c, lp_r, lr_c, lr_r = map(_log_softmax, (pol_c, pol_r, ref_c, ref_r))
    g = lambda lp, lab: np.take_along_axis(lp, lab[..., None], 2)[..., 0]  # noqa: E731
    chosen_reward = rw_c * (g(lp_c, lab_c) - g(lr_c, lab_c))
    rejected_reward = rw_r * (g(lp_r, lab_r) - g(lr_r, lab_r))
    chosen_reward = (chosen_reward * lm_c).sum(-1)
    rejected_reward = (rejected_reward * lm_r).sum(-1)
    u = chosen_reward - rejected_reward
    chosen_token_kl = (np.exp(lr_c) * (lp_c - lr_c)).sum(-1)
    rejected_token_kl = (np.exp(lr_r) * (lp_r - lr_r)).sum(-1)
    chosen_token_kl = klm_c * chosen_token_kl
    rejected_token_kl = klm_r * rejected_token_kl
    chosen_token_kl = (chosen_token_kl * lm_c).sum(-1)
    rejected_token_kl = (rejected_token_kl * lm_r).sum(-1)
    d = chosen_token_kl - rejected_token_kl
    losses_ = -_logsigmoid(beta * (u - d))
    losses_ = losses_ + l1_u * (np.abs(rw_c * lm_c).sum(-1) + np.abs(rw_r * lm_r).sum(-1))
    losses_ = losses_ + l1_d * (np.abs(klm_c * lm_c).sum(-1) + np.abs(klm_r * lm_r).sum(-1))
    return losses_


def authors_mask(h, ln_w, ln_b, w, b, eps=1e-5):
    """SimpleMaskAllLayers with one layer: LayerNorm -> Linear(D, 1) -> ReLU (mixer folded)."""
    mu, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
    return np.maximum(((h - mu) / np.sqrt(var + eps) * ln_w + ln_b) @ w + b, 0.0)


def _worked(seed=0, B=3, K=5, V=7, scale=1.0):
    rng = np.random.default_rng(seed)
    v = {k: rng.normal(size=(B, K, V)) * scale for k in ("pol_c", "pol_r", "ref_c", "ref_r")}
    v["lab_c"], v["lab_r"] = rng.integers(V, size=(B, K)), rng.integers(V, size=(B, K))
    v["lm_c"] = (np.arange(K)[None] >= np.array([[0], [1], [2]])).astype(float)  # ragged responses
    v["lm_r"] = (np.arange(K)[None] < np.array([[5], [3], [4]])).astype(float)
    for k in ("rw_c", "rw_r", "klm_c", "klm_r"):
        v[k] = np.maximum(rng.normal(0.3, 0.6, size=(B, K)), 0.0)  # ReLU masks with exact zeros
    return v


def _ours(v, beta, **kw):
    tok = lambda lg, lab, m: sequence_logps(jnp.asarray(lg), jnp.asarray(lab), jnp.asarray(m)).token  # noqa: E731,E501
    kl_c = sequence.token_kl(jnp.asarray(v["pol_c"]), jnp.asarray(v["ref_c"]), v["lm_c"])
    kl_r = sequence.token_kl(jnp.asarray(v["pol_r"]), jnp.asarray(v["ref_r"]), v["lm_r"])
    return sparsepo.sparsepo_loss(
        tok(v["pol_c"], v["lab_c"], v["lm_c"]), tok(v["pol_r"], v["lab_r"], v["lm_r"]),
        tok(v["ref_c"], v["lab_c"], v["lm_c"]), tok(v["ref_r"], v["lab_r"], v["lm_r"]),
        kl_c, kl_r, v["lm_c"], v["lm_r"], v["rw_c"], v["rw_r"], v["klm_c"], v["klm_r"],
        beta=beta, **kw)


# ------------------------------------------------------------------ (a) worked values
@pytest.mark.parametrize("common", [True, False])
def test_loss_matches_the_authors_code_on_worked_values(common):
    v = _worked(1)
    if common:
        v["klm_c"], v["klm_r"] = v["rw_c"], v["rw_r"]
    expect = authors_loss(**v, beta=BETA, l1_u=0.01, l1_d=0.02)
    got, _ = _ours(v, BETA, l1_u=0.01, l1_d=0.02)
    np.testing.assert_allclose(np.asarray(got), expect, rtol=1e-6, atol=1e-6)
    assert np.abs(expect - np.log(2)).min() > 1e-2  # the values are not trivially log 2


def test_mask_network_matches_layernorm_linear_relu():
    rng = np.random.default_rng(2)
    params = sparsepo.mask_init(jax.random.key(0), 16)
    params = {**params, "ln_scale": rng.normal(1, 0.1, 16), "ln_bias": rng.normal(0, 0.1, 16)}
    h = rng.normal(size=(4, 6, 16)) * 3.0 + 1.0
    got = np.asarray(sparsepo.mask_apply(params, jnp.asarray(h)))
    expect = authors_mask(h, *(np.asarray(params[k]) for k in ("ln_scale", "ln_bias", "w", "b")))
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6)
    assert (got == 0).any() and (got > 0).any()  # ReLU: exact zeros, and not all
    bound = 1 / np.sqrt(16)  # torch's Linear init
    assert np.all(np.abs(np.asarray(params["w"])) <= bound) and abs(float(params["b"])) <= bound


# ------------------------------------------------------------------ (b) identities
def test_masks_of_one_give_tdpo1_and_kl_mask_zero_gives_dpo_and_zero_masks_give_log_2():
    v = _worked(3)
    ones, zeros = np.ones_like(v["rw_c"]), np.zeros_like(v["rw_c"])
    lp = _log_softmax
    g = lambda a, lab: np.take_along_axis(lp(a), lab[..., None], 2)[..., 0]  # noqa: E731
    margin_c = ((g(v["pol_c"], v["lab_c"]) - g(v["ref_c"], v["lab_c"])) * v["lm_c"]).sum(-1)
    margin_r = ((g(v["pol_r"], v["lab_r"]) - g(v["ref_r"], v["lab_r"])) * v["lm_r"]).sum(-1)
    # TDPO (Zeng et al. 2024) tdpo_loss, if_tdpo2=False: position_kl = sum p_ref (log p_ref - log p)
    kl = lambda pol, ref, m: ((np.exp(lp(ref)) * (lp(ref) - lp(pol))).sum(-1) * m).sum(-1)  # noqa: E731,E501
    kl_c, kl_r = kl(v["pol_c"], v["ref_c"], v["lm_c"]), kl(v["pol_r"], v["ref_r"], v["lm_r"])
    tdpo1 = -_logsigmoid(BETA * ((margin_c - margin_r) - (kl_r - kl_c)))
    w = {**v, "rw_c": ones, "rw_r": ones, "klm_c": ones, "klm_r": ones}
    np.testing.assert_allclose(np.asarray(_ours(w, BETA)[0]), tdpo1, rtol=1e-6)
    w = {**v, "rw_c": ones, "rw_r": ones, "klm_c": zeros, "klm_r": zeros}
    dpo = losses.preference_loss(margin_c, margin_r, 0 * margin_c, 0 * margin_r,
                                 loss_type="sigmoid", beta=BETA)
    np.testing.assert_allclose(np.asarray(_ours(w, BETA)[0]), np.asarray(dpo), rtol=1e-6)
    w = {**v, "rw_c": zeros, "rw_r": zeros, "klm_c": zeros, "klm_r": zeros}
    np.testing.assert_allclose(np.asarray(_ours(w, BETA, l1_u=0.3, l1_d=0.3)[0]), np.log(2),
                               rtol=1e-7)


# ------------------------------------------------------------------ (c) signs, (d) gradients
def test_swapping_chosen_and_rejected_negates_the_margin():
    v = _worked(4)
    loss, parts = _ours(v, BETA)
    swap = {**v}
    for a, b in (("pol_c", "pol_r"), ("ref_c", "ref_r"), ("lab_c", "lab_r"), ("lm_c", "lm_r"),
                 ("rw_c", "rw_r"), ("klm_c", "klm_r")):
        swap[a], swap[b] = v[b], v[a]
    loss_s, parts_s = _ours(swap, BETA)
    np.testing.assert_allclose(np.asarray(parts_s["logits"]), -np.asarray(parts["logits"]),
                               rtol=1e-6, atol=1e-6)
    # softplus(z) - softplus(-z) = z: the swapped loss exceeds the loss by beta * logits
    np.testing.assert_allclose(np.asarray(loss_s - loss), BETA * np.asarray(parts["logits"]),
                               rtol=1e-5, atol=1e-6)
    # raising the chosen log-ratio on a kept (mu > 0) token lowers the loss
    tok = np.zeros((1, 2))
    m = np.ones((1, 2))
    low = sparsepo.sparsepo_loss(tok + [[0.5, 0.0]], tok, tok, tok, tok, tok, m, m, m, m, m, m,
                                 beta=1.0)[0]
    high = sparsepo.sparsepo_loss(tok + [[0.5, 0.0]], tok + [[0.5, 0.0]], tok, tok, tok, tok, m,
                                  m, m, m, m, m, beta=1.0)[0]
    assert float(low[0]) < np.log(2) - 0.1 and abs(float(high[0]) - np.log(2)) < 1e-7
    # a larger KL on the chosen response RAISES its implicit reward (TDPO's sign), on rejected lowers
    kl = tok + [[0.5, 0.0]]
    up = sparsepo.sparsepo_loss(tok, tok, tok, tok, kl, tok, m, m, m, m, m, m, beta=1.0)[0]
    assert float(up[0]) < np.log(2) - 0.1


def test_gradients_are_finite_at_large_log_ratios():
    rng = np.random.default_rng(5)
    B, K = 4, 6
    big = lambda s: jnp.asarray(rng.choice([-1.0, 1.0], size=(B, K)) * s)  # noqa: E731
    m = jnp.ones((B, K))
    mask = jnp.asarray(np.maximum(rng.normal(0.5, 1, size=(B, K)), 0))

    def f(pc, pr, kc, kr, u):
        return jnp.mean(sparsepo.sparsepo_loss(pc, pr, 0 * pc, 0 * pr, kc, kr, m, m, u, u, u, u,
                                               beta=BETA, l1_u=0.01, l1_d=0.01)[0])

    for s in (1e2, 1e4):
        val, grads = jax.value_and_grad(f, argnums=(0, 1, 2, 3, 4))(
            big(s), big(s), jnp.abs(big(s)), jnp.abs(big(s)), mask)
        assert np.isfinite(float(val)) and float(val) > 1.0
        for gr in grads:
            assert np.all(np.isfinite(np.asarray(gr)))
    lg = jnp.asarray(rng.normal(size=(B, K, 9)) * 1e3)
    gk = jax.grad(lambda a: jnp.sum(sequence.token_kl(a, -a, m)))(lg)
    assert np.all(np.isfinite(np.asarray(gk)))
    assert float(jnp.min(sequence.token_kl(lg, -lg, m))) >= 0.0


# ------------------------------------------------------------------ (e), (f) through the recipe
@pytest.mark.parametrize("objective", ["sparsepo", "sparsepo_independent"])
def test_first_update_loss_is_the_formula_at_the_reference(task, objective):
    """At pi = pi_ref the log-ratios and KLs vanish: the loss is log 2 + the L1 terms of the masks
    the reference's hidden states give on the drawn batch (catches misaligned hidden states)."""
    params, model, data, _ = task
    cfg = rc.PrefConfig(model=model, objective=objective, num_updates=1, eval_every=0,
                        batch_size=8)
    recipe = rc.make_train(cfg)
    hp = rc.HParams(beta=BETA, sparsepo_l1_u=0.05, sparsepo_l1_d=0.02)
    state = recipe.init(jax.random.key(1), hp, params, data)
    _, m = recipe.run(state, hp, params, data, num_updates=1)
    _, k_batch = jax.random.split(state.key)
    idx = jax.random.randint(k_batch, (8,), 0, data.num_pairs)
    l1 = 0.0
    mean_u = []
    for tok, rol in ((data.chosen_tokens, data.chosen_roles),
                     (data.rejected_tokens, data.rejected_roles)):
        h, _, msk = target_hidden(params, model, tok[idx], rol[idx], num_target=12)
        mu, md = sparsepo.masks_of(state.trainable["objective"], h)
        half = 0.5 if objective == "sparsepo" else 1.0
        l1 += half * (0.05 * np.sum(np.asarray(mu * msk)) + 0.02 * np.sum(np.asarray(md * msk)))
        mean_u.append(np.asarray(mu)[np.asarray(msk) > 0])
    np.testing.assert_allclose(m["train/loss"][0], np.log(2) + l1 / 8, rtol=2e-5)
    assert 0 < l1  # the masks are not all zero at init
    np.testing.assert_allclose(m["train/mask_mean"][0], np.concatenate(mean_u).mean(), rtol=1e-5)
    np.testing.assert_allclose(m["train/seq_kl_chosen"][0], 0.0, atol=1e-6)
    np.testing.assert_allclose(m["train/rewards_margins"][0], 0.0, atol=1e-6)


def test_sparsepo_raises_the_reward_and_reports_where_its_masks_sit(task):
    """Common mask, beta 0.1, 2 fixed seeds, 80 updates at lr 3e-3. Measured:
    eval/reward - eval/reference_reward = 0.241, 0.237 (reference ~ -0.03; 3 other seeds of the same
    setting: 0.236-0.258), eval/kl 18-21; a sign error sends it below the reference.

    Claim (v) of issue 15 ("the masks concentrate on the reward-bearing tokens") is measured here
    and NOT asserted, as it does not hold: mean mask on sentiment-word tokens 2.437 / 2.949 vs
    neutral 2.420 / 2.853 (the masks grow from ~0.3 at init; exact zeros < 0.3%). A mask reads
    the reference's state at the position that predicts y_t (the context x, y_<t, never y_t), and
    in task (a) sentiment words are placed independently of the context, so the mask cannot single
    them out."""
    params, model, data, _ = task
    recipe = rc.make_train(rc.PrefConfig(model=model, objective="sparsepo", num_updates=80,
                                         batch_size=32, eval_every=80))
    keys = jax.random.split(jax.random.key(0), 2)
    states, m = jax.jit(jax.vmap(recipe.train, (0, None, None, None)))(
        keys, rc.HParams(lr=3e-3, beta=0.1), params, data)
    reward, ref = np.asarray(m["eval/reward"][:, -1]), np.asarray(m["eval/reference_reward"][:, -1])
    print("reward", reward, "reference", ref, "kl", np.asarray(m["eval/kl"][:, -1]),
          "mask_mean", np.asarray(m["train/mask_mean"][:, -1]),
          "mask_sparsity", np.asarray(m["train/mask_sparsity"][:, -1]))
    assert (reward > ref + 0.15).all(), (reward, ref)
    assert (np.asarray(m["eval/kl"][:, -1]) > 0).all()
    sentiment = np.asarray(data.reward_weights) != 0
    for s in range(2):
        obj = jax.tree.map(lambda a, s=s: a[s], states.trainable["objective"])
        vals, senti = [], []
        for tok, rol in ((data.chosen_tokens, data.chosen_roles),
                         (data.rejected_tokens, data.rejected_roles)):
            h, tgt, msk = target_hidden(params, model, tok, rol, num_target=12)
            mu, _ = sparsepo.masks_of(obj, h)
            keep = np.asarray(msk) > 0
            vals.append(np.asarray(mu)[keep])
            senti.append(sentiment[np.asarray(tgt)[keep]])
        vals, senti = np.concatenate(vals), np.concatenate(senti)
        print(f"seed {s}: mask on sentiment tokens {vals[senti].mean():.4f} "
              f"(zeros {np.mean(vals[senti] == 0):.3f}), neutral {vals[~senti].mean():.4f} "
              f"(zeros {np.mean(vals[~senti] == 0):.3f})")
