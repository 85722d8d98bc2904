"""DQN: TD targets and losses against NumPy, truncation bootstrap in the stored transitions, learning
gates and target updates, vmap == loop, config errors, and learning CartPole."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lfx.rl import dqn
from lfx.rl.q_networks import QNetwork, epsilon_greedy, linear_epsilon

# 6 updates of 2 envs x 4 steps; learning after 16 env steps (from update 3), target every 2 updates.
TINY = dqn.DQNConfig(num_envs=2, num_steps=4, total_timesteps=2 * 4 * 6, buffer_size=64, learning_starts=16,
                     batch_size=8, gradient_steps=2, target_update_every=2, hidden_sizes=(16, 16))
RECIPE = dqn.make_train(TINY)
TRAIN = jax.jit(RECIPE.train)
UPDATE = jax.jit(RECIPE.update)


def _np_target(q_next_target, q_next_online, reward, terminated, gamma, double):
    out = np.zeros_like(reward)
    for i in range(reward.shape[0]):
        a = int(np.argmax(q_next_online[i] if double else q_next_target[i]))
        out[i] = reward[i] + (0.0 if terminated[i] else gamma * q_next_target[i, a])
    return out


@pytest.mark.parametrize("double", [False, True])
def test_td_target_matches_numpy_and_double_dqn_takes_the_online_argmax(double):
    rng = np.random.default_rng(0)
    B, A = 32, 4
    qt, qo = rng.normal(size=(B, A)).astype(np.float32), rng.normal(size=(B, A)).astype(np.float32)
    reward = rng.normal(size=B).astype(np.float32)
    terminated = (rng.random(B) < 0.3).astype(np.float32)
    got = np.asarray(dqn.td_target(qt, qo, reward, terminated, gamma=0.9, double_dqn=double))
    np.testing.assert_allclose(got, _np_target(qt, qo, reward, terminated, 0.9, double), rtol=1e-6)
    np.testing.assert_allclose(got[terminated > 0], reward[terminated > 0])
    # the two estimators differ exactly where the online and target argmax disagree (and not terminated)
    other = np.asarray(dqn.td_target(qt, qo, reward, terminated, gamma=0.9, double_dqn=not double))
    differs = (np.argmax(qt, -1) != np.argmax(qo, -1)) & (terminated == 0)
    assert differs.any()
    np.testing.assert_array_equal(~np.isclose(got, other), differs)


def _batch(seed, B=16, obs_dim=4):
    rng = np.random.default_rng(seed)
    return dqn.Transition(
        obs=jnp.asarray(rng.normal(size=(B, obs_dim)), jnp.float32),
        action=jnp.asarray(rng.integers(0, 2, B), jnp.int32),
        reward=jnp.asarray(rng.normal(size=B), jnp.float32),
        terminated=jnp.asarray(rng.random(B) < 0.3, jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(B, obs_dim)), jnp.float32),
    )


@pytest.mark.parametrize("loss", ["mse", "huber"])
@pytest.mark.parametrize("double", [False, True])
def test_q_loss_matches_numpy_and_treats_the_target_as_a_constant(loss, double):
    net = QNetwork(action_dim=2, hidden_sizes=(8,))
    params = net.init(jax.random.key(0), jnp.zeros(4))
    target_params = net.init(jax.random.key(1), jnp.zeros(4))
    batch = _batch(3)
    f = functools.partial(dqn.q_loss, network=net, gamma=0.95, loss=loss, double_dqn=double)
    value, metrics = f(params, target_params, batch)

    q = np.asarray(net.apply(params, batch.obs))
    y = _np_target(np.asarray(net.apply(target_params, batch.next_obs)), np.asarray(net.apply(params, batch.next_obs)),
                   np.asarray(batch.reward), np.asarray(batch.terminated), 0.95, double)
    err = q[np.arange(16), np.asarray(batch.action)] - y
    ref = np.mean(err**2) if loss == "mse" else np.mean(np.where(np.abs(err) <= 1, 0.5 * err**2, np.abs(err) - 0.5))
    np.testing.assert_allclose(value, ref, rtol=1e-5)
    assert loss == "mse" or np.abs(err).max() > 1  # the linear branch is exercised

    # gradient = that of the loss with y frozen (no gradient through the online argmax or Q(s'))
    y_const = jnp.asarray(y)

    def frozen(p):
        q_sa = jnp.take_along_axis(net.apply(p, batch.obs), batch.action[:, None], -1)[:, 0]
        e = q_sa - y_const
        return jnp.mean(e**2) if loss == "mse" else jnp.mean(optax.huber_loss(e, delta=1.0))

    g = jax.grad(lambda p: f(p, target_params, batch)[0])(params)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(jax.grad(frozen)(params)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)


def test_stored_transitions_bootstrap_truncation_from_the_final_observation():
    """CartPole cut at 5 steps: the time-limit ends are stored as not terminated, next_obs = the last observation."""
    cfg = dataclasses.replace(TINY, env_kwargs=(("max_steps_in_episode", 5),), num_steps=12)
    recipe = dqn.make_train(cfg)
    state = recipe.init(jax.random.key(0), dqn.HParams())
    _, traj, stats = dqn.rollout(state, dqn.HParams(), config=cfg, env=recipe.env, env_params=recipe.env_params,
                                 network=recipe.network)
    done = np.asarray(stats["episode_done"])
    term = np.asarray(traj.terminated)
    obs, next_obs = np.asarray(traj.obs), np.asarray(traj.next_obs)
    assert done.sum() >= 2 and term.sum() == 0  # every end within 5 steps is a truncation here
    for t in range(cfg.num_steps - 1):
        for n in range(cfg.num_envs):
            if done[t, n]:  # the successor is the pre-reset state, not the next episode's first one
                assert not np.allclose(next_obs[t, n], obs[t + 1, n])
                np.testing.assert_allclose(next_obs[t, n, [0, 2]], obs[t, n, [0, 2]] + 0.02 * obs[t, n, [1, 3]],
                                           rtol=1e-5, atol=1e-6)  # CartPole's Euler step of x and theta
            else:
                np.testing.assert_array_equal(next_obs[t, n], obs[t + 1, n])


def test_learning_starts_gates_the_gradient_steps_and_the_target_follows_every_k_updates():
    hp = dqn.HParams(lr=1e-2, tau=1.0)
    state = jax.jit(RECIPE.init)(jax.random.key(2), hp)
    init_params = state.params
    for u in range(1, RECIPE.num_updates + 1):
        prev = state
        state, m = UPDATE(state, hp)
        learning = u * TINY.steps_per_update > TINY.learning_starts  # from update 3
        assert float(m["train/learning"]) == float(learning)
        pairs = zip(jax.tree.leaves(prev.params), jax.tree.leaves(state.params), strict=True)
        moved = not all(np.array_equal(a, b) for a, b in pairs)
        assert moved == learning
        expected_target = state.params if u % TINY.target_update_every == 0 else prev.target_params
        for a, b in zip(jax.tree.leaves(state.target_params), jax.tree.leaves(expected_target), strict=True):
            np.testing.assert_array_equal(a, b)
        assert int(state.buffer.size) == min(u * TINY.steps_per_update, TINY.buffer_size)
    assert not np.array_equal(jax.tree.leaves(state.target_params)[0], jax.tree.leaves(init_params)[0])


def test_soft_target_update_is_polyak_averaging():
    hp = dqn.HParams(lr=1e-2, tau=0.25)
    state = jax.jit(RECIPE.init)(jax.random.key(3), hp)
    for _ in range(3):  # to update 3: the first one that learns
        state, _ = UPDATE(state, hp)
    prev = state
    state, _ = UPDATE(state, hp)  # update 4: a target update
    for t, p, old in zip(*(jax.tree.leaves(x) for x in (state.target_params, state.params, prev.target_params))):
        np.testing.assert_allclose(t, 0.25 * np.asarray(p) + 0.75 * np.asarray(old), rtol=1e-6, atol=1e-7)


def test_vmapped_seeds_equal_single_runs():
    keys = jax.random.split(jax.random.key(0), 3)
    states, metrics = jax.jit(jax.vmap(RECIPE.train, in_axes=(0, None)))(keys, dqn.HParams(lr=1e-3))
    for i in range(3):
        state, m = TRAIN(keys[i], dqn.HParams(lr=1e-3))
        row = jax.tree.map(lambda x, i=i: x[i], states.params)
        for a, b in zip(jax.tree.leaves(row), jax.tree.leaves(state.params), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(metrics["train/q_loss"][i], m["train/q_loss"], rtol=1e-4, atol=1e-7)
        row_buffer = jax.tree.map(lambda x, i=i: x[i], states.buffer)
        for a, b in zip(jax.tree.leaves(row_buffer), jax.tree.leaves(state.buffer), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)  # the same transitions were stored
    assert not np.allclose(metrics["train/q_loss"][0, 3:], metrics["train/q_loss"][1, 3:])


def test_epsilon_decays_linearly_in_env_steps_and_greedy_acting_is_the_argmax():
    hp = dqn.HParams(eps_start=1.0, eps_end=0.1, eps_decay_fraction=0.5)
    steps = jnp.array([0, 10, 25, 50, 80])
    np.testing.assert_allclose(dqn.epsilon_at(steps, hp, 100), [1.0, 0.82, 0.55, 0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(linear_epsilon(1.0, 0.3, 0.0, jnp.float32(0.0)), 0.3)
    q = jax.random.normal(jax.random.key(0), (1000, 3))
    np.testing.assert_array_equal(epsilon_greedy(jax.random.key(1), q, 0.0), np.argmax(q, -1))
    explored = np.asarray(epsilon_greedy(jax.random.key(1), q, 1.0)) != np.argmax(q, -1)
    assert 0.6 < explored.mean() < 0.73  # uniform over 3 actions: 2/3 differ from the argmax
    state, _ = TRAIN(jax.random.key(1), dqn.HParams())
    obs = jax.random.normal(jax.random.key(4), (7, 4))
    np.testing.assert_array_equal(RECIPE.network.apply(state.params, obs, method="act"),
                                  np.argmax(RECIPE.network.apply(state.params, obs), -1))
    ev = jax.jit(functools.partial(dqn.evaluate_state, config=dataclasses.replace(TINY, eval_max_steps=60),
                                   eval_env=RECIPE.eval_env, env_params=RECIPE.env_params, network=RECIPE.network))
    (_, a), (_, b) = ev(state), ev(state)
    assert float(a) == float(b) and 0 < float(a) <= 60


@pytest.mark.parametrize("change, match", [
    ({"buffer_size": 4}, "cannot hold one update"),
    ({"learning_starts": 48}, "never learn"),
    ({"loss": "l1"}, "Unknown loss"),
    ({"network": "minatar_conv"}, "MinAtar"),
    ({"batch_size": 0}, "batch_size must be positive"),
    ({"env_name": "Pendulum-v1"}, "discrete actions"),
])
def test_bad_config_is_rejected_before_compiling(change, match):
    with pytest.raises(ValueError, match=match):
        dqn.make_train(dataclasses.replace(TINY, **change))


@pytest.mark.parametrize("field, value", [("tau", 0.0), ("eps_end", 1.5), ("lr", -1.0), ("gamma", float("nan"))])
def test_bad_hparams_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        RECIPE.train(jax.random.key(0), dqn.HParams(**{field: value}))


def test_learns_cartpole_in_1e5_steps():
    """PureJaxRL's CartPole settings at 1e5 steps (1000 updates), seed 0: greedy return >= 150 (random ~20).

    Measured: greedy returns of 8 seeds at 1e5 steps 210-420 (docs/results/dqn_pqn.md).
    """
    cfg = dataclasses.replace(dqn.DQNConfig(), total_timesteps=100_000, eval_every=1000, eval_episodes=10)
    _, metrics = jax.jit(dqn.make_train(cfg).train)(jax.random.key(0), dqn.HParams())
    assert float(metrics["eval/episode_return"][-1]) >= 150.0
