"""Truncated meta-gradient through inner updates vs float64 central finite differences."""


import jax
import jax.numpy as jnp
import numpy as np
import optax

from lfx.meta import bandit, lpo, metagrad


def test_metagradient_matches_finite_differences_float64():
    with jax.enable_x64(True):
        cfg = lpo.DriftConfig(hidden_size=4, temporally_aware=True)
        bc = bandit.BanditConfig(num_arms=3, batch_size=16, num_updates=6, num_epochs=2, learning_rate=0.5)
        obj = lpo.make_lpo_objective(cfg)
        inner_update = lambda phi, s, k: bandit.update(obj, phi, s, k, config=bc)
        meta_loss = lambda phi, s, k: -bandit.expected_reward(s)
        loss_fn = metagrad.make_window_loss(inner_update, meta_loss, window=3)
        phi = lpo.init_drift(jax.random.key(0), cfg, output_scale=2.0)
        phi = jax.tree.map(lambda x: x.astype(jnp.float64), phi)
        s0 = bandit.init(jax.random.key(1), bc)
        s0 = s0.replace(logits=jnp.array([0.3, -0.2, 0.1]), arm_means=s0.arm_means.astype(jnp.float64))
        key = jax.random.key(2)
        f = jax.jit(lambda p: loss_fn(p, s0, key)[0])
        g = jax.grad(f)(phi)
        flat, unravel = jax.flatten_util.ravel_pytree(phi)
        gflat, _ = jax.flatten_util.ravel_pytree(g)
        assert flat.dtype == jnp.float64
        assert float(jnp.linalg.norm(gflat)) > 1e-4  # the drift really shapes the inner updates
        rng = np.random.default_rng(0)
        for i in rng.choice(flat.size, 10, replace=False):
            e = jnp.zeros_like(flat).at[i].set(1e-6)
            fd = (f(unravel(flat + e)) - f(unravel(flat - e))) / 2e-6
            np.testing.assert_allclose(gflat[i], fd, rtol=1e-5, atol=1e-9)


def test_metagrad_step_lowers_meta_loss():
    cfg = lpo.DriftConfig(hidden_size=8)
    bc = bandit.BanditConfig(num_updates=10, learning_rate=0.5)
    obj = lpo.make_lpo_objective(cfg)
    inner_update = lambda phi, s, k: bandit.update(obj, phi, s, k, config=bc)
    meta_loss = lambda phi, s, k: -bandit.expected_reward(s)
    step, opt = metagrad.make_metagrad_step(inner_update, meta_loss, window=5, optimizer=optax.adam(0.05))
    step = jax.jit(step)
    loss_fn = jax.jit(metagrad.make_window_loss(inner_update, meta_loss, window=5))
    phi = lpo.init_drift(jax.random.key(0), cfg, output_scale=3.0)
    s0 = bandit.init(jax.random.key(1), bc)
    keys = jax.random.split(jax.random.key(9), 32)
    evaluate = lambda p: float(jnp.mean(jax.vmap(lambda k: loss_fn(p, s0, k)[0])(keys)))
    before = evaluate(phi)
    opt_state = opt.init(phi)
    for i in range(30):
        phi, opt_state, _, m = step(phi, opt_state, s0, jax.random.key(100 + i))
    after = evaluate(phi)
    assert after < before - 0.2, (before, after)


def test_metagrad_recipe_equals_host_loop_and_meta_lr_is_traced():
    """The scanned recipe == the host loop it replaced (reset, Adam step), and a new meta_lr
    does not recompile."""
    cfg = lpo.DriftConfig(hidden_size=8)
    bc = bandit.BanditConfig(num_updates=7, learning_rate=0.5)
    obj = lpo.make_lpo_objective(cfg)
    inner_update = lambda phi, s, k: bandit.update(obj, phi, s, k, config=bc)  # noqa: E731
    meta_loss = lambda phi, s, k: -bandit.expected_reward(s)  # noqa: E731
    inner_init = lambda k: bandit.init(k, bc)  # noqa: E731
    needs_reset = lambda s: s.update + 3 > bc.num_updates  # noqa: E731
    phi0 = lpo.init_drift(jax.random.key(0), cfg, output_scale=3.0)
    traces = []

    def counted_loss(phi, s, k):
        traces.append(1)
        return meta_loss(phi, s, k)

    recipe = metagrad.make_train(inner_init, inner_update, counted_loss, phi0, window=3,
                                 num_steps=6, needs_reset=needs_reset)
    train = jax.jit(recipe.train)
    state, m = train(jax.random.key(5), metagrad.HParams(meta_lr=0.05))
    # The host loop of experiments/meta_lpg.py before the recipe.
    step, opt = metagrad.make_metagrad_step(inner_update, meta_loss, window=3,
                                            optimizer=optax.adam(0.05))
    step = jax.jit(step)
    key = jax.random.key(5)
    k, key = jax.random.split(key)
    phi, opt_state, s = phi0, opt.init(phi0), inner_init(k)
    losses, resets = [], []
    for _ in range(6):
        key, k_step, k_new = jax.random.split(key, 3)
        resets.append(bool(needs_reset(s)))
        if resets[-1]:
            s = inner_init(k_new)
        phi, opt_state, s, mi = step(phi, opt_state, s, k_step)
        losses.append(float(mi["meta/loss"]))
    np.testing.assert_allclose(m["meta/loss"], losses, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(m["meta/new_lifetime"]) > 0, resets)
    assert any(resets)
    for a, b in zip(jax.tree.leaves(recipe.mean(state)), jax.tree.leaves(phi), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    n = len(traces)
    _, m2 = train(jax.random.key(5), metagrad.HParams(meta_lr=0.01))
    assert len(traces) == n and not np.allclose(m2["meta/loss"][1:], m["meta/loss"][1:])
