"""LPO / TA-LPO drift: identities against NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.meta import lpo


def _np_ppo_loss(log_ratio, adv, eps):
    loss = 0.0
    for lr, a in zip(log_ratio, adv):
        r = np.exp(lr)
        loss += min(r * a, min(max(r, 1 - eps), 1 + eps) * a)
    return -loss / len(adv)


def _np_drift(params, log_ratio, adv, progress, lifetime, cfg, eps):
    out = []
    for lr, a in zip(log_ratio, adv):
        r = np.exp(lr)
        x = np.array([lr, lr**2, 1 - r, (1 - r) ** 2])
        x = np.concatenate([x, a * x])
        feats = [x]
        if cfg.temporally_aware:
            feats.append(progress * x)
        if cfg.lifetime_features:
            feats.append(np.log(lifetime) * x)
        x = np.concatenate(feats)
        o = np.tanh(x @ np.asarray(params["w_hidden"], np.float64)) @ np.asarray(
            params["w_out"], np.float64
        )
        if cfg.ppo_init:
            o += max((r - min(max(r, 1 - eps), 1 + eps)) * a, 0.0)
        out.append(max(o - 1e-4, 0.0))
    return np.array(out)


def _batch(key, m=256, scale=0.5):
    k1, k2 = jax.random.split(key)
    return scale * jax.random.normal(k1, (m,)), jax.random.normal(k2, (m,))


def test_zero_drift_is_policy_gradient_surrogate():
    cfg = lpo.DriftConfig(temporally_aware=True)
    params = jax.tree.map(jnp.zeros_like, lpo.init_drift(jax.random.key(0), cfg))
    log_ratio, adv = _batch(jax.random.key(1))
    loss, _ = lpo.lpo_objective(
        params, log_ratio, adv, config=cfg, clip_eps=0.2, progress=0.3, lifetime=100.0
    )
    np.testing.assert_allclose(loss, -np.mean(np.exp(log_ratio) * adv), rtol=1e-6)
    # Its gradient w.r.t. log r at r = 1 is -A / M, the policy gradient.
    g = jax.grad(
        lambda lr: lpo.lpo_objective(
            params, lr, adv, config=cfg, clip_eps=0.2, progress=0.3, lifetime=100.0
        )[0]
    )(jnp.zeros_like(adv))
    np.testing.assert_allclose(g, -adv / adv.shape[0], rtol=1e-6)


@pytest.mark.parametrize("name", ["lpo_ppo_init", "ta_lpo_ppo_init"])
def test_ppo_initialised_drift_reproduces_ppo_clip(name):
    cfg = lpo.DRIFT_CONFIGS[name]
    params = lpo.init_drift(jax.random.key(0), cfg)
    for seed in range(3):
        log_ratio, adv = _batch(jax.random.key(seed + 10))
        loss, _ = lpo.lpo_objective(
            params, log_ratio, adv, config=cfg, clip_eps=0.2, progress=0.7, lifetime=50.0
        )
        ref = _np_ppo_loss(np.asarray(log_ratio, np.float64), np.asarray(adv, np.float64), 0.2)
        # The drift's 1e-4 offset is the only difference (at most 1e-4 per element).
        np.testing.assert_allclose(loss, ref, atol=1.1e-4)
        ppo, _ = lpo.ppo_clip_objective(None, log_ratio, adv, clip_eps=0.2)
        np.testing.assert_allclose(ppo, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(lpo.DRIFT_CONFIGS))
def test_drift_matches_numpy_nonnegative_and_zero_at_ratio_one(name):
    cfg = lpo.DRIFT_CONFIGS[name]
    params = lpo.init_drift(jax.random.key(3), cfg, output_scale=3.0)
    log_ratio, adv = _batch(jax.random.key(4), scale=1.0)
    d = lpo.drift_apply(
        params, log_ratio, adv, config=cfg, clip_eps=0.2, progress=0.4, lifetime=64.0
    )
    ref = _np_drift(params, np.asarray(log_ratio, np.float64), np.asarray(adv, np.float64), 0.4, 64.0, cfg, 0.2)
    np.testing.assert_allclose(d, ref, rtol=1e-4, atol=1e-5)
    assert float(d.min()) >= 0.0
    assert float(d.max()) > 0.0  # the net is not trivially zero
    d1 = lpo.drift_apply(
        params, jnp.zeros_like(adv), 10 * adv, config=cfg, clip_eps=0.2, progress=0.9, lifetime=64.0
    )
    np.testing.assert_array_equal(d1, 0.0)


def test_vmapped_population_equals_loop():
    cfg = lpo.DRIFT_CONFIGS["ta_lpo"]
    keys = jax.random.split(jax.random.key(5), 6)
    pop = jax.vmap(lambda k: lpo.init_drift(k, cfg))(keys)
    log_ratio, adv = _batch(jax.random.key(6))
    obj = lpo.make_lpo_objective(cfg)
    f = lambda p: obj(p, log_ratio, adv, clip_eps=0.2, progress=0.5, lifetime=10.0)[0]
    vm = jax.vmap(f)(pop)
    loop = [f(jax.tree.map(lambda x, i=i: x[i], pop)) for i in range(6)]
    np.testing.assert_allclose(vm, np.array(loop), rtol=1e-6)
    assert np.unique(np.round(np.asarray(vm), 6)).size == 6


def test_progress_changes_ta_drift_only():
    log_ratio, adv = _batch(jax.random.key(7))
    for name, should_change in [("lpo", False), ("ta_lpo", True)]:
        cfg = lpo.DRIFT_CONFIGS[name]
        params = lpo.init_drift(jax.random.key(8), cfg)
        d0 = lpo.drift_apply(params, log_ratio, adv, config=cfg, progress=0.0)
        d1 = lpo.drift_apply(params, log_ratio, adv, config=cfg, progress=1.0)
        assert bool(jnp.any(jnp.abs(d0 - d1) > 1e-4)) == should_change


def test_invalid_config_raises():
    with pytest.raises(ValueError, match="temporally_aware"):
        lpo.DriftConfig(lifetime_features=True)
    with pytest.raises(ValueError, match="hidden_size"):
        lpo.DriftConfig(hidden_size=0)
