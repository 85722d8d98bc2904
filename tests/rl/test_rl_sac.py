"""SAC: losses and the temperature update against NumPy transcriptions of brax's `sac/losses.py`,
the update order, seeds vmapped = a loop, export, config errors, and learning on Pendulum-v1."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.rl import evaluation, replay, sac

TINY = sac.SACConfig(num_envs=2, num_steps=2, gradient_steps=2, total_timesteps=200,
                     learning_starts=40, buffer_size=256, batch_size=8, hidden_sizes=(16, 16))


def _np_tanh_normal_log_prob(mean, log_std, u):
    """log N(u; mean, std) - log(1 - tanh(u)^2), summed over the action axis (float64, naive)."""
    mean, log_std, u = (np.asarray(x, np.float64) for x in (mean, log_std, u))
    z = (u - mean) / np.exp(log_std)
    logp = -0.5 * z**2 - log_std - 0.5 * np.log(2 * np.pi) - np.log(1.0 - np.tanh(u) ** 2)
    return logp.sum(-1)


@pytest.fixture(scope="module")
def tiny():
    """TINY (observation normalisation on), its init and ONE compiled `run` of 5 updates (4 env
    steps each; learning starts at 40 steps, after two calls), shared by the tests."""
    recipe = sac.make_train(dataclasses.replace(TINY, normalize_obs=True))
    hp = sac.HParams(gamma=0.9, reward_scale=3.0, init_alpha=0.5)
    run5 = jax.jit(functools.partial(recipe.run, num_updates=5))
    return recipe, hp, jax.jit(recipe.init), run5


@pytest.fixture(scope="module")
def setup(tiny):
    recipe, hp, init, run5 = tiny
    state = init(jax.random.key(0), hp)
    for _ in range(3):  # 60 steps in the buffer, 10 updates of them learned from
        state, _ = run5(state, hp)
    batch = replay.sample(state.buffer, jax.random.key(1), 8)
    norm = sac._normalizer(recipe.config, state.obs_stats)
    batch = batch._replace(terminated=jnp.array([0, 1, 0, 0, 1, 0, 0, 0], jnp.float32),
                           obs=norm(batch.obs), next_obs=norm(batch.next_obs))
    return recipe, hp, state, batch


def test_critic_loss_matches_numpy_reference(setup):
    recipe, hp, state, batch = setup
    nets = recipe.networks
    key, alpha = jax.random.key(7), jnp.float32(0.3)
    loss, metrics = sac.critic_loss(state.critic_params, state.target_params, state.actor_params,
                                    batch, key, alpha, networks=nets, hparams=hp)
    pi = nets.actor.apply(state.actor_params, batch.next_obs)
    u = np.asarray(pi.mean) + np.exp(np.asarray(pi.log_std)) * np.asarray(
        jax.random.normal(key, pi.mean.shape))
    next_q = np.asarray(nets.critic.apply(state.target_params, batch.next_obs, jnp.tanh(u)), np.float64)
    logp = _np_tanh_normal_log_prob(pi.mean, pi.log_std, u)
    next_v = next_q.min(0) - 0.3 * logp
    y = 3.0 * np.asarray(batch.reward) + 0.9 * (1 - np.asarray(batch.terminated)) * next_v
    q = np.asarray(nets.critic.apply(state.critic_params, batch.obs, batch.action), np.float64)
    want = 0.5 * np.mean((q - y[None]) ** 2)
    np.testing.assert_allclose(float(loss), want, rtol=2e-4)
    np.testing.assert_allclose(float(metrics["train/q_mean"]), q.mean(), rtol=1e-4, atol=1e-6)
    # Terminal transitions do not bootstrap: y = reward_scale * r there.
    assert np.allclose(y[[1, 4]], 3.0 * np.asarray(batch.reward)[[1, 4]])


def test_actor_loss_matches_numpy_reference_and_its_gradient_raises_q(setup):
    recipe, _, state, batch = setup
    nets = recipe.networks
    key, alpha = jax.random.key(3), jnp.float32(0.2)
    loss, logp = sac.actor_loss(state.actor_params, state.critic_params, batch.obs, key, alpha,
                                networks=nets)
    pi = nets.actor.apply(state.actor_params, batch.obs)
    u = np.asarray(pi.mean) + np.exp(np.asarray(pi.log_std)) * np.asarray(
        jax.random.normal(key, pi.mean.shape))
    want_logp = _np_tanh_normal_log_prob(pi.mean, pi.log_std, u)
    q = np.asarray(nets.critic.apply(state.critic_params, batch.obs, jnp.tanh(u)), np.float64)
    np.testing.assert_allclose(np.asarray(logp), want_logp, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(float(loss), np.mean(0.2 * want_logp - q.min(0)), rtol=1e-4, atol=1e-5)
    # With alpha = 0 a small step along -grad raises min_j Q(s, tanh(u)) for the same noise.
    grad = jax.grad(lambda p: sac.actor_loss(p, state.critic_params, batch.obs, key, 0.0,
                                             networks=nets)[0])(state.actor_params)
    stepped = jax.tree.map(lambda p, g: p - 1e-3 * g, state.actor_params, grad)
    before = sac.actor_loss(state.actor_params, state.critic_params, batch.obs, key, 0.0, networks=nets)[0]
    after = sac.actor_loss(stepped, state.critic_params, batch.obs, key, 0.0, networks=nets)[0]
    assert after < before


@pytest.mark.parametrize("log_prob, expect_alpha", [(-5.0, "down"), (5.0, "up")])
def test_temperature_moves_toward_the_target_entropy(log_prob, expect_alpha):
    """L_alpha = alpha * sg(-log pi - H_target): entropy above target (-log pi > H) lowers alpha."""
    h_target = -1.0
    logp = jnp.full((16,), log_prob)
    g = jax.grad(sac.alpha_loss)(jnp.float32(0.0), logp, h_target)
    np.testing.assert_allclose(float(g), -log_prob - h_target, rtol=1e-6)  # alpha = 1 at log 0
    assert (float(g) > 0) == (expect_alpha == "down")
    assert float(sac.target_entropy(3, sac.HParams(target_entropy_scale=0.5))) == -1.5


def test_sgd_step_order_alpha_then_critic_then_actor_then_polyak(setup):
    recipe, hp, state, _ = setup
    nets = recipe.networks
    key = jax.random.key(11)
    new, _ = sac.sgd_step(state, key, config=recipe.config, networks=nets, hparams=hp)
    k_batch, k_alpha, k_critic, k_actor = jax.random.split(key, 4)
    batch = replay.sample(state.buffer, k_batch, recipe.config.batch_size)
    norm = sac._normalizer(recipe.config, state.obs_stats)
    batch = batch._replace(obs=norm(batch.obs), next_obs=norm(batch.next_obs))
    # Adam's first step moves log alpha by exactly -lr * sign(grad).
    pi = nets.actor.apply(state.actor_params, batch.obs)
    logp = pi.log_prob(pi.sample(k_alpha))
    g = float(jax.grad(sac.alpha_loss)(state.log_alpha, logp, sac.target_entropy(1, hp)))
    np.testing.assert_allclose(float(new.log_alpha), float(state.log_alpha) - hp.lr * np.sign(g), rtol=1e-5)
    # The critics step on L_Q with the NEW alpha.
    alpha = jnp.exp(new.log_alpha)
    grads, _ = jax.grad(sac.critic_loss, has_aux=True)(
        state.critic_params, state.target_params, state.actor_params, batch, k_critic, alpha,
        networks=nets, hparams=hp)
    tx = sac.make_optimizer(hp)
    upd, _ = tx.update(grads, state.critic_opt, state.critic_params)
    critic = jax.tree.map(lambda p, u: p + u, state.critic_params, upd)
    for a, b in zip(jax.tree.leaves(critic), jax.tree.leaves(new.critic_params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Polyak: target' = (1 - tau) target + tau critic'.
    for t0, c1, t1 in zip(jax.tree.leaves(state.target_params), jax.tree.leaves(new.critic_params),
                          jax.tree.leaves(new.target_params)):
        np.testing.assert_allclose(t1, (1 - hp.tau) * t0 + hp.tau * c1, rtol=1e-5, atol=1e-7)
    # The actor steps against the critics just updated.
    grads, _ = jax.grad(sac.actor_loss, has_aux=True)(state.actor_params, new.critic_params, batch.obs,
                                                       k_actor, alpha, networks=nets)
    upd, _ = tx.update(grads, state.actor_opt, state.actor_params)
    for p, u, b in zip(jax.tree.leaves(state.actor_params), jax.tree.leaves(upd),
                       jax.tree.leaves(new.actor_params)):
        np.testing.assert_allclose(p + u, b, rtol=1e-5, atol=1e-6)


def test_no_gradient_steps_before_learning_starts_then_learning(tiny):
    recipe, hp, init, run5 = tiny  # 4 steps per update, learning_starts 40
    state = init(jax.random.key(0), hp)
    mid, m = run5(state, hp)
    for a, b in zip(jax.tree.leaves(state.actor_params), jax.tree.leaves(mid.actor_params)):
        np.testing.assert_array_equal(a, b)
    out, m2 = run5(mid, hp)  # 40 steps collected: the 10th update takes its gradient steps
    assert not np.allclose(jax.tree.leaves(mid.critic_params)[0], jax.tree.leaves(out.critic_params)[0])
    losses = np.concatenate([m["train/critic_loss"], m2["train/critic_loss"]])
    assert np.all(losses[:9] == 0) and losses[9] > 0, losses
    assert int(out.buffer.size) == 40
    # Warm-up actions are uniform on [-1, 1], not the initial policy's (whose tanh(mu) ~ 0).
    actions = np.asarray(out.buffer.data.action[:36])
    assert actions.std() > 0.4 and np.abs(actions).max() <= 1.0


def test_vmapped_seeds_equal_a_loop(tiny):
    recipe, hp, init, run5 = tiny
    keys = jax.random.split(jax.random.key(4), 2)
    states = [init(k, hp) for k in keys]
    batched = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
    vrun = jax.jit(jax.vmap(functools.partial(recipe.run, num_updates=5), (0, None)))
    for _ in range(3):
        batched, mb = vrun(batched, hp)
        singles = [run5(s, hp) for s in states]
        states = [s for s, _ in singles]
        for i, (_, ms) in enumerate(singles):
            for name in ("train/episode_return", "train/critic_loss", "train/alpha"):
                np.testing.assert_allclose(mb[name][i], ms[name], rtol=2e-4, atol=1e-4)
    np.testing.assert_allclose(batched.obs_stats.mean[1], states[1].obs_stats.mean, rtol=1e-5)


def test_export_reloads_to_the_same_actions(setup, tmp_path):
    recipe, _, state, _ = setup
    obs = jax.random.normal(jax.random.key(1), (5, 3))
    act = sac.policy_act(state.actor_params, state.obs_stats, actor=recipe.network)
    want = jax.vmap(act)(obs, jax.random.split(jax.random.key(2), 5))
    path = evaluation.export_policy(str(tmp_path / "sac_pendulum"), recipe.network, state.actor_params,
                                    obs_stats=state.obs_stats)
    loaded, params = evaluation.load_policy(path)
    np.testing.assert_allclose(loaded(params, obs), want, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(np.asarray(want)) <= 2.0)  # Pendulum's torque bounds: scale(tanh(mu))


@pytest.mark.parametrize("change, message", [
    (dict(env_name="CartPole-v1"), "continuous actions"),
    (dict(learning_starts=10_000), "never learn"),
    (dict(buffer_size=2), "cannot hold"),
    (dict(hidden_sizes=()), "hidden_sizes"),
])
def test_bad_config_is_rejected_before_compiling(change, message):
    with pytest.raises(ValueError, match=message):
        sac.make_train(dataclasses.replace(TINY, **change))


def test_bad_hparams_are_rejected():
    with pytest.raises(ValueError, match="tau"):
        sac.HParams(tau=0.0).validate()


def test_learns_pendulum_with_a_fixed_seed():
    """Random actions score about -1200 on Pendulum-v1; SAC's greedy policy passes -400 by 6,000
    steps (64-64 networks, 4 envs, 4 gradient steps per update; fixed seed)."""
    cfg = sac.SACConfig(total_timesteps=6_000, learning_starts=1_000, hidden_sizes=(64, 64),
                        eval_every=1_500 // 4, eval_episodes=8)
    recipe = sac.make_train(cfg)
    _, m = jax.jit(recipe.train)(jax.random.key(0), sac.HParams())
    evals = np.asarray(m["eval/episode_return"])[np.asarray(m["eval/fresh"]) > 0]
    assert evals[0] < -900, evals  # the warm-up policy is poor
    assert evals[-1] > -400, evals
