"""GAFlowNet explorer pieces (lfx.gfn.gaflownet): TB with the intrinsic reward against torchgfn's
`TBGAFN.get_scores` (state-level branch, transcribed in NumPy), and RND's novelty signal."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lfx.gfn import gaflownet
from lfx.gfn.hypergrid import make_hypergrid


def test_augmented_tb_equals_the_torchgfn_state_level_score():
    # torchgfn tutorials/examples/train_hypergrid_gafn.py (GFNOrg/torchgfn), use_edge_ri=False:
    #   scores = sum_t log_pf - (logsumexp([log R, log r_i(x)]) + sum_t log_pb);  loss = mean((scores + logZ)^2)
    rng = np.random.default_rng(0)
    T, B = 6, 5
    log_pf, log_pb = rng.normal(size=(T, B)), rng.normal(size=(T, B))
    valid = np.arange(T)[:, None] < rng.integers(1, T + 1, size=B)[None]
    log_r, log_ri, log_z = rng.normal(size=B), rng.normal(size=B), 0.7
    scores = np.zeros(B)
    for b in range(B):
        t_ok = valid[:, b]
        scores[b] = log_pf[t_ok, b].sum() - (np.logaddexp(log_r[b], log_ri[b]) + log_pb[t_ok, b].sum())
    ref = np.mean((scores + log_z) ** 2)
    f = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    loss, _ = gaflownet.augmented_trajectory_balance(
        log_z, f(log_pf), f(log_pb), f(log_r), f(log_ri), jnp.asarray(valid))
    np.testing.assert_allclose(float(loss), ref, rtol=1e-5)
    # reward-free explorer: log R = -inf leaves log r_i alone in the target
    loss0, _ = gaflownet.augmented_trajectory_balance(
        log_z, f(log_pf), f(log_pb), jnp.full(B, -jnp.inf), f(log_ri), jnp.asarray(valid))
    ref0 = np.mean([(log_pf[valid[:, b], b].sum() - log_ri[b] - log_pb[valid[:, b], b].sum() + log_z) ** 2
                    for b in range(B)])
    np.testing.assert_allclose(float(loss0), ref0, rtol=1e-5)


def test_rnd_intrinsic_reward_falls_where_the_predictor_was_trained():
    # hypergrid 2x8 (64 states); predictor trained on 8 of them, 200 Adam steps (1e-3), seed 0,
    # nets 64-64-32. Measured: seen 1.67 -> 0.005, unseen 1.52 -> 1.15.
    env, ep = make_hypergrid(2, 8)
    objs = jnp.asarray(env.terminal_objects())
    obs = jax.vmap(lambda o: env.get_obs(env.init_state().replace(obj=o), ep))(objs)
    rnd = gaflownet.rnd_init(jax.random.key(0), env.obs_size, 64, 32)
    seen = jnp.arange(obs.shape[0]) < 8
    tx = optax.adam(1e-3)

    @jax.jit
    def train(p):
        def step(c, _):
            p, o = c
            g = jax.grad(gaflownet.rnd_loss)(p, rnd["target"], obs, seen)
            u, o = tx.update(g, o, p)
            return (optax.apply_updates(p, u), o), None

        return jax.lax.scan(step, (p, tx.init(p)), None, length=200)[0][0]

    before = gaflownet.intrinsic_log_reward(rnd["predictor"], rnd["target"], obs, 0.1)
    after = gaflownet.intrinsic_log_reward(train(rnd["predictor"]), rnd["target"], obs, 0.1)
    drop = np.asarray(before - after)  # log-ratio of the intrinsic reward, before / after
    assert drop[:8].min() > 3.0, drop[:8]  # seen states: reward down by > e^3
    assert np.median(drop[8:]) < 1.0, np.median(drop[8:])  # unseen: stays within e of its start
    # the reward is beta * error (log-linear in beta)
    np.testing.assert_allclose(
        np.asarray(gaflownet.intrinsic_log_reward(rnd["predictor"], rnd["target"], obs, 0.5) - before),
        np.log(5.0), rtol=1e-5)
