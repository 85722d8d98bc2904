"""PPO objectives against NumPy references, and their signs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.rl import losses
from lfx.rl.networks import Policy


def np_ppo_clip(log_ratio, adv, eps):
    loss = 0.0
    for lr_, a in zip(log_ratio, adv):
        r = np.exp(lr_)
        loss += min(r * a, min(max(r, 1 - eps), 1 + eps) * a)
    return -loss / len(adv)


def np_value_loss(v, v_old, target, eps):
    out = 0.0
    for vi, vo, g in zip(v, v_old, target):
        vc = vo + min(max(vi - vo, -eps), eps)
        out += max((vi - g) ** 2, (vc - g) ** 2)
    return 0.5 * out / len(v)


@pytest.mark.parametrize("seed", [0, 1])
def test_ppo_clip_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    log_ratio = rng.normal(scale=0.4, size=64)
    adv = rng.normal(size=64)
    loss, metrics = losses.ppo_clip_objective(None, jnp.asarray(log_ratio), jnp.asarray(adv), clip_eps=0.2)
    assert float(loss) == pytest.approx(np_ppo_clip(log_ratio, adv, 0.2), rel=1e-5)
    frac = np.mean(np.abs(np.exp(log_ratio) - 1) > 0.2)
    assert float(metrics["clip_frac"]) == pytest.approx(frac)


def test_value_loss_matches_numpy():
    rng = np.random.default_rng(3)
    v, v_old, g = rng.normal(size=(3, 50))
    got = losses.clipped_value_loss(jnp.asarray(v), jnp.asarray(v_old), jnp.asarray(g), clip_eps=0.2)
    assert float(got) == pytest.approx(np_value_loss(v, v_old, g, 0.2), rel=1e-5)


def test_ppo_gradient_raises_probability_of_positive_advantage_actions():
    # Descending the loss must increase log pi(a) where A > 0 and decrease it where A < 0.
    adv = jnp.array([1.0, -1.0])
    grad = jax.grad(lambda lr: losses.ppo_clip_objective(None, lr, adv, clip_eps=0.2)[0])(jnp.zeros(2))
    assert float(grad[0]) < 0 < float(grad[1])


def test_clipping_stops_the_gradient_outside_the_trust_region():
    adv = jnp.array([1.0])
    g = jax.grad(lambda lr: losses.ppo_clip_objective(None, lr, adv, clip_eps=0.2)[0])(jnp.log(jnp.array([1.5])))
    assert float(g[0]) == 0.0


def test_policy_log_prob_and_entropy_match_closed_forms():
    logits = jnp.array([[0.1, 1.0, -0.5]])
    pi = Policy(logits=logits)
    p = np.exp(np.asarray(logits[0])) / np.exp(np.asarray(logits[0])).sum()
    assert float(pi.log_prob(jnp.array([1]))[0]) == pytest.approx(np.log(p[1]), rel=1e-5)
    assert float(pi.entropy()[0]) == pytest.approx(-(p * np.log(p)).sum(), rel=1e-5)
    mean, log_std = jnp.array([[0.5, -1.0]]), jnp.array([[0.0, np.log(2.0)]])
    g = Policy(mean=mean, log_std=log_std)
    a = np.array([1.0, 1.0])
    ref = sum(
        -0.5 * ((a[i] - m) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)
        for i, (m, s) in enumerate([(0.5, 1.0), (-1.0, 2.0)])
    )
    assert float(g.log_prob(jnp.asarray(a)[None])[0]) == pytest.approx(ref, rel=1e-5)
    ent = sum(0.5 * np.log(2 * np.pi * np.e * s**2) for s in (1.0, 2.0))
    assert float(g.entropy()[0]) == pytest.approx(ent, rel=1e-5)
