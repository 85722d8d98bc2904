"""Packed trajectory balance (`lfx.gfn.packed`): same trajectories and gradients as the padded path.

References: `forward_rollout` + `jax.grad` of `losses.trajectory_balance` / `log_partition_variance`
(the padded path), a padded recomputation from the unpacked buffer, and NumPy loops replaying every
packed transition through the environment.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.gfn import losses
from lfx.gfn.base import GFNState
from lfx.gfn.bitseq import make_bitseq
from lfx.gfn.hypergrid import make_hypergrid
from lfx.gfn.networks import make_policy
from lfx.gfn.packed import packed_grads, sample_packed, unpack
from lfx.gfn.rollout import forward_rollout, masked_log_softmax
from lfx.gfn.train import GFNConfig, GFNHParams, make_train, resolve_rollout

LOSS_FNS = {
    "tb": lambda log_z, pf, pb, lr, valid: losses.trajectory_balance(log_z, pf, pb, lr, valid)[0],
    "logz_var": lambda log_z, pf, pb, lr, valid: losses.log_partition_variance(pf, pb, lr, valid)[0],
}


def _setup(learned_pb, env_fn=lambda: make_hypergrid(3, 5, r0=0.1)):
    env, ep = env_fn()
    init, apply = make_policy(env.obs_size, env.num_actions, env.num_backward_actions, hidden=(32, 32),
                              learned_pb=learned_pb)
    return env, ep, apply, init(jax.random.key(0))


def _assert_tree_close(a, b, rtol=2e-5, atol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        scale = float(jnp.abs(x).max())
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=rtol, atol=atol * max(scale, 1.0))


@pytest.mark.parametrize("learned_pb", [False, True])
@pytest.mark.parametrize("loss", sorted(LOSS_FNS))
def test_full_pool_matches_padded_rollout_and_its_gradient(loss, learned_pb):
    env, ep, apply, p = _setup(learned_pb)
    B, kw = 48, {"epsilon": 0.3, "temperature": 1.5, "learned_pb": learned_pb}
    key, log_z = jax.random.key(1), jnp.float32(0.7)

    def padded(p, log_z):
        tr = forward_rollout(key, p, env, ep, apply, B, **kw)
        return LOSS_FNS[loss](log_z, tr.log_pf, tr.log_pb, tr.log_reward, tr.valid), tr

    (value, tr), (g, g_z) = jax.jit(jax.value_and_grad(padded, argnums=(0, 1), has_aux=True))(p, log_z)

    @jax.jit
    def packed(p, log_z):
        batch = sample_packed(key, p, env, ep, apply, B, pool_size=B, chunk=32, **kw)
        return batch, packed_grads(p, log_z, batch, env, ep, apply, loss=loss, chunk=32, learned_pb=learned_pb)

    batch, (value_p, g_p, g_z_p, _) = packed(p, log_z)
    # pool = B: the very same trajectories (same per-step draws) as the padded rollout
    np.testing.assert_array_equal(batch.length, tr.length)
    np.testing.assert_array_equal(batch.terminal_obj, tr.terminal_obj)
    assert int(batch.count) == int(tr.length.sum()) > 32  # several gradient chunks
    np.testing.assert_allclose(batch.sum_log_pf, tr.log_pf.sum(0), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(batch.sum_log_pb, tr.log_pb.sum(0), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(value_p, value, rtol=1e-5)
    np.testing.assert_allclose(g_z_p, g_z, rtol=1e-5, atol=1e-6)
    _assert_tree_close(g, g_p)


@pytest.mark.parametrize("learned_pb", [False, True])
def test_refill_pool_gradient_equals_padded_gradient_on_the_same_trajectories(learned_pb):
    env, ep, apply, p = _setup(learned_pb)
    B, T, log_z = 40, env.max_steps, jnp.float32(-0.4)
    batch = jax.jit(lambda k: sample_packed(k, p, env, ep, apply, B, pool_size=7, chunk=16,
                                            epsilon=0.2, learned_pb=learned_pb))(jax.random.key(2))
    obj, act, prev_bwd, valid = unpack(batch, T)
    v = lambda f: jax.vmap(jax.vmap(f, in_axes=(0, None)), in_axes=(0, None))
    state = GFNState(time=jnp.broadcast_to(jnp.arange(T)[:, None], (T, B)), obj=obj,
                     done=jnp.zeros((T, B), bool))
    fmask, bmask = v(env.forward_mask)(state, ep), v(env.backward_mask)(state, ep)

    def padded_loss(p, log_z, loss):
        out = apply(p, v(env.get_obs)(state, ep))
        pf = jnp.take_along_axis(masked_log_softmax(out.fwd_logits, fmask), act[..., None], -1)[..., 0]
        if learned_pb:
            pb = jnp.take_along_axis(masked_log_softmax(out.bwd_logits, bmask), prev_bwd[..., None], -1)[..., 0]
        else:
            pb = -jnp.log(jnp.maximum(bmask.sum(-1), 1).astype(jnp.float32))
        pb = jnp.where(jnp.arange(T)[:, None] > 0, pb, 0.0)
        return LOSS_FNS[loss](log_z, pf, pb, batch.log_reward, valid), (pf, pb)

    for loss in LOSS_FNS:
        (value, (pf, pb)), (g, g_z) = jax.value_and_grad(padded_loss, argnums=(0, 1), has_aux=True)(p, log_z, loss)
        # the sampler's running sums are the on-policy log-probabilities of the transitions taken
        np.testing.assert_allclose(batch.sum_log_pf, jnp.where(valid, pf, 0).sum(0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(batch.sum_log_pb, jnp.where(valid, pb, 0).sum(0), rtol=1e-5, atol=1e-5)
        value_p, g_p, g_z_p, _ = packed_grads(p, log_z, batch, env, ep, apply, loss=loss, chunk=16,
                                              learned_pb=learned_pb)
        np.testing.assert_allclose(value_p, value, rtol=1e-5)
        np.testing.assert_allclose(g_z_p, g_z, rtol=1e-5, atol=1e-6)
        _assert_tree_close(g, g_p)


@pytest.mark.parametrize("env_fn", [lambda: make_hypergrid(3, 5, r0=0.1), lambda: make_bitseq(8, 2, num_modes=4)],
                         ids=["hypergrid3x5", "bitseq8_2"])
def test_packed_buffer_replays_through_the_env(env_fn):
    env, ep, apply, p = _setup(False, env_fn)
    B, W = 37, 6
    b = jax.jit(lambda k: sample_packed(k, p, env, ep, apply, B, pool_size=W, chunk=8, epsilon=0.5,
                                        temperature=2.0))(jax.random.key(3))
    b = jax.tree.map(np.asarray, b)
    n = int(b.count)
    assert n == b.length.sum() and np.all(b.length >= 1) and np.all(b.length <= env.max_steps)
    assert b.traj.shape[0] % 8 == 0 and b.traj.shape[0] >= B * env.max_steps
    assert np.all(b.traj[n:] == B) and np.all(b.traj[:n] < B)
    fmask = jax.jit(jax.vmap(env.forward_mask, in_axes=(0, None)))
    state = jax.tree.map(np.asarray, jax.vmap(lambda _: env.init_state())(jnp.arange(n)))
    state = state.replace(obj=b.obj[:n], time=b.time[:n])
    m = np.asarray(fmask(state, ep))
    assert np.all(m[np.arange(n), b.actions[:n]])  # every sampled action is valid
    step = jax.jit(env.step_forward)
    for tid in range(B):
        rows = np.nonzero(b.traj[:n] == tid)[0]
        assert len(rows) == b.length[tid]
        np.testing.assert_array_equal(b.time[rows], np.arange(len(rows)))  # in order, none missing
        s = env.init_state()
        for i in rows:
            np.testing.assert_array_equal(b.obj[i], s.obj)
            assert (b.actions[i] == env.exit_action) == (i == rows[-1])
            s = step(s, b.actions[i], ep)
        np.testing.assert_array_equal(b.terminal_obj[tid], s.obj)
        np.testing.assert_allclose(b.log_reward[tid], env.log_reward(s, ep), rtol=1e-6)


def test_train_packed_full_pool_follows_the_padded_run():
    base = {"env_kwargs": (("dim", 2), ("height", 6), ("r0", 0.1)), "batch_size": 32, "num_iterations": 4,
                "hidden": (32, 32)}
    hp = GFNHParams(epsilon=0.1)
    _, m_pad = jax.jit(make_train(GFNConfig(**base, rollout="padded")).train)(jax.random.key(5), hp)
    _, m_pk = jax.jit(make_train(GFNConfig(**base, rollout="packed", pool_size=32, pack_chunk=64)).train)(
        jax.random.key(5), hp)
    for k in ("train/loss", "train/logz", "train/length", "train/log_reward"):
        np.testing.assert_allclose(m_pk[k], m_pad[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_vmap_over_hparams_equals_single_runs():
    cfg = GFNConfig(env_kwargs=(("dim", 2), ("height", 4)), batch_size=8, num_iterations=10,
                    hidden=(16,), rollout="packed", pool_size=3, pack_chunk=8)
    train = make_train(cfg).train
    hps = GFNHParams(lr=jnp.array([1e-3, 3e-3]), logz_lr=jnp.array([0.1, 0.05]),
                     epsilon=jnp.array([0.0, 0.5]), temperature=jnp.array([1.0, 2.0]),
                     subtb_lambda=jnp.array([0.9, 0.9]))
    _, mv = jax.jit(jax.vmap(train, in_axes=(None, 0)))(jax.random.key(3), hps)
    for i in range(2):
        _, m = jax.jit(train)(jax.random.key(3), jax.tree.map(lambda x, i=i: x[i], hps))
        np.testing.assert_allclose(mv["train/loss"][i], m["train/loss"], rtol=2e-4, atol=1e-5)
        np.testing.assert_array_equal(mv["train/length"][i], m["train/length"])


@pytest.mark.parametrize("loss, iters", [("tb", 1000), ("logz_var", 1200)])
def test_packed_learns_hypergrid_2x8(loss, iters):
    """Same budget and bounds as tests/gfn/test_gfn_train.py's padded TB / logZ-var runs."""
    cfg = GFNConfig(env_kwargs=(("dim", 2), ("height", 8), ("r0", 0.1)), loss=loss, batch_size=16,
                    num_iterations=iters, hidden=(64, 64), eval_every=iters, rollout="packed")
    _, m = jax.jit(make_train(cfg).train)(jax.random.key(0), GFNHParams(lr=1e-3, logz_lr=0.1))
    assert float(m["eval/tv"][0]) > 0.3
    assert float(m["eval/tv"][-1]) <= 0.02, float(m["eval/tv"][-1])
    assert float(m["eval/logz_err"][-1]) <= 0.05, float(m["eval/logz_err"][-1])
    assert int(m["train/modes_found"][-1]) == 4


def test_packed_rejects_unsupported_settings_before_compiling():
    for bad in ("db", "subtb", "fm"):
        with pytest.raises(ValueError, match="rollout='packed' needs a loss"):
            make_train(GFNConfig(loss=bad, rollout="packed"))
    with pytest.raises(ValueError, match="replay_batch=0"):
        make_train(GFNConfig(rollout="packed", replay_batch=4, replay_capacity=100))
    with pytest.raises(ValueError, match="pool_size"):
        make_train(GFNConfig(rollout="packed", batch_size=8, pool_size=9))
    with pytest.raises(ValueError, match="choose 'auto', 'padded' or 'packed'"):
        make_train(GFNConfig(rollout="chunked"))
    with pytest.raises(ValueError, match="pool_size"):  # "auto" resolving to packed checks it too
        make_train(GFNConfig(batch_size=8, pool_size=9))


def test_auto_rollout_is_packed_exactly_where_packed_applies():
    assert resolve_rollout(GFNConfig()) == "packed"
    assert resolve_rollout(GFNConfig(loss="logz_var")) == "packed"
    for cfg in (GFNConfig(loss="db"), GFNConfig(loss="subtb"), GFNConfig(loss="fm"),
                GFNConfig(replay_batch=4, replay_capacity=100), GFNConfig(skip_done=True),
                GFNConfig(loss="tb", rollout="padded")):
        assert resolve_rollout(cfg) == "padded", cfg
    # And "auto" runs the resolved path: the same metrics as naming it.
    base = {"env_kwargs": (("dim", 2), ("height", 4)), "batch_size": 8, "num_iterations": 3,
            "hidden": (16,)}
    for loss, named in (("tb", "packed"), ("db", "padded")):
        _, m_auto = jax.jit(make_train(GFNConfig(**base, loss=loss)).train)(jax.random.key(2), GFNHParams())
        _, m_named = jax.jit(make_train(GFNConfig(**base, loss=loss, rollout=named)).train)(
            jax.random.key(2), GFNHParams())
        np.testing.assert_array_equal(m_auto["train/loss"], m_named["train/loss"])
