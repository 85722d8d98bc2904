"""LPG network: backward GRU against a NumPy loop, episode resets, TA inputs, agent-update sign."""

import jax
import jax.numpy as jnp
import numpy as np

from lfx.meta import lpg

CFG = lpg.LPGConfig(hidden_size=6, embed_size=4, y_dim=3, temporally_aware=True)


def _np_targets(p, reward, done, prob, y, y_next, progress, lifetime):
    p = jax.tree.map(lambda x: np.asarray(x, np.float64), p)
    sig = lambda x: 1 / (1 + np.exp(-x))
    emb = lambda v: (np.maximum(v @ p["embed1"]["w"] + p["embed1"]["b"], 0) @ p["embed2"]["w"] + p["embed2"]["b"])[0]
    T, B = reward.shape
    H = p["gru_h"]["w"].shape[0]
    pi_hat = np.zeros((T, B))
    y_hat = np.zeros((T, B, y.shape[-1]))
    for b in range(B):
        h = np.zeros(H)
        for t in reversed(range(T)):
            if done[t, b]:
                h = np.zeros(H)
            x = np.array([reward[t, b], float(done[t, b]), prob[t, b], emb(y[t, b]), emb(y_next[t, b]),
                          progress, np.log(lifetime)])
            gx = x @ p["gru_x"]["w"] + p["gru_x"]["b"]
            gh = h @ p["gru_h"]["w"] + p["gru_h"]["b"]
            z = sig(gx[:H] + gh[:H])
            r = sig(gx[H:2 * H] + gh[H:2 * H])
            n = np.tanh(gx[2 * H:] + r * gh[2 * H:])
            h = (1 - z) * n + z * h
            pi_hat[t, b] = h @ p["pi_head"]["w"][:, 0] + p["pi_head"]["b"][0]
            logits = h @ p["y_head"]["w"] + p["y_head"]["b"]
            y_hat[t, b] = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    return pi_hat, y_hat


def _traj(key, T=7, B=3, m=3):
    ks = jax.random.split(key, 5)
    reward = jax.random.normal(ks[0], (T, B))
    done = jax.random.bernoulli(ks[1], 0.25, (T, B))
    prob = jax.random.uniform(ks[2], (T, B))
    y = jax.nn.softmax(jax.random.normal(ks[3], (T, B, m)))
    y_next = jax.nn.softmax(jax.random.normal(ks[4], (T, B, m)))
    return reward, done, prob, y, y_next


def test_backward_gru_matches_numpy_loop():
    p = lpg.init_lpg(jax.random.key(0), CFG)
    p = jax.tree.map(lambda x: x + 0.3 * jax.random.normal(jax.random.key(1), x.shape), p)
    tr = _traj(jax.random.key(2))
    pi_hat, y_hat = lpg.lpg_targets(p, *tr, config=CFG, progress=0.4, lifetime=50.0)
    ref_pi, ref_y = _np_targets(p, *[np.asarray(x) for x in tr], 0.4, 50.0)
    np.testing.assert_allclose(pi_hat, ref_pi, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(y_hat, ref_y, rtol=1e-4, atol=1e-5)


def test_targets_see_only_their_own_episode_future():
    p = lpg.init_lpg(jax.random.key(0), CFG)
    p = jax.tree.map(lambda x: x + 0.3 * jax.random.normal(jax.random.key(1), x.shape), p)
    reward, done, prob, y, y_next = _traj(jax.random.key(3))
    done = jnp.zeros_like(done).at[3].set(True)  # episode boundary at t = 3
    base, _ = lpg.lpg_targets(p, reward, done, prob, y, y_next, config=CFG)
    # A reward in the NEXT episode (t = 5) cannot change targets of the first (t <= 3) ...
    later, _ = lpg.lpg_targets(p, reward.at[5].add(3.0), done, prob, y, y_next, config=CFG)
    np.testing.assert_allclose(later[:4], base[:4], atol=1e-6)
    # ... but changes the targets of its own past within the episode (t = 4, 5).
    assert float(jnp.max(jnp.abs(later[4:6] - base[4:6]))) > 1e-4
    # Training progress enters TA-LPG's targets.
    prog, _ = lpg.lpg_targets(p, reward, done, prob, y, y_next, config=CFG, progress=1.0)
    assert float(jnp.max(jnp.abs(prog - base))) > 1e-4


def test_agent_update_follows_positive_pi_hat():
    # With π̂ > 0 on a taken action and KL-free targets, one gradient step raises its probability.
    params = lpg.init_agent(jax.random.key(0), 4, 3, CFG)
    obs = jnp.eye(4)[jnp.array([0, 1, 2, 3])]
    action = jnp.array([2, 2, 0, 1])
    pi_hat = jnp.array([1.0, 1.0, -1.0, 0.0])
    _, y = lpg.agent_apply(params, obs)
    g = jax.grad(lpg.agent_loss)(params, obs, action, pi_hat, y, y_coef=0.5)
    new = jax.tree.map(lambda a, b: a - 0.5 * b, params, g)
    lp0, _ = lpg.agent_apply(params, obs)
    lp1, _ = lpg.agent_apply(new, obs)
    assert float(lp1[0, 2]) > float(lp0[0, 2]) and float(lp1[2, 0]) < float(lp0[2, 0])
    g0 = jax.grad(lpg.agent_loss)(params, obs, action, jnp.zeros(4), y, y_coef=0.5)
    np.testing.assert_allclose(g0["pi"]["w"], 0.0, atol=1e-7)  # π̂ = 0: the policy does not move
    np.testing.assert_allclose(g["y"]["w"], 0.0, atol=1e-7)  # y already equals ŷ: KL gradient 0


def test_masked_final_mean():
    v = jnp.arange(10.0)
    active = (jnp.arange(10) < 6).astype(jnp.float32)
    np.testing.assert_allclose(lpg.masked_final_mean(v, active, 0.34), np.mean([4, 5]))
