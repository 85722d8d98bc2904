"""Greedy evaluation (`lfx.rl.evaluation.evaluate`, `eval_blocks`) and policy export / reload."""

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.envs import wrappers
from lfx.lm.io import ArtifactError
from lfx.rl import evaluation, ppo


def _loop_first_episode(env, params, key, act, episode, num_episodes, max_steps):
    """One env by hand, with the key splits `evaluate` uses: (return, length) of its first episode."""
    k_reset, k_run = jax.random.split(key)
    obs, state = env.reset(jax.random.split(k_reset, num_episodes)[episode], params)
    ret, length = 0.0, 0
    for k in jax.random.split(k_run, max_steps):
        k_act, k_env = jax.random.split(k)
        action = act(obs, jax.random.split(k_act, num_episodes)[episode])
        obs, state, r, term, trunc, _ = env.step(jax.random.split(k_env, num_episodes)[episode], state,
                                                 action, params)
        ret += float(r)
        length += 1
        if term or trunc:
            break
    return ret, length


def test_evaluate_records_each_envs_first_episode_like_a_loop():
    env, params = gymnax.make("CartPole-v1")
    w = jnp.array([0.3, -1.0, 2.0, 1.5])

    def act(obs, key):  # a deterministic linear policy (no use of key)
        del key
        return (obs @ w > 0).astype(jnp.int32)

    key = jax.random.key(4)
    returns, lengths = evaluation.evaluate(key, act, env, params, num_episodes=3, max_steps=60)
    for e in range(3):
        ret, length = _loop_first_episode(env, params, key, act, e, 3, 60)
        assert returns[e] == pytest.approx(ret)
        assert int(lengths[e]) == length
    # an always-left policy falls within a few dozen steps: steps after the fall are not counted
    r_left, l_left = evaluation.evaluate(key, lambda o, k: jnp.int32(0), env, params,
                                         num_episodes=3, max_steps=200)
    assert np.all(np.asarray(l_left) < 60) and np.allclose(r_left, l_left)
    again, _ = evaluation.evaluate(key, act, env, params, num_episodes=3, max_steps=60)
    np.testing.assert_array_equal(returns, again)


def test_evaluate_carries_a_recurrent_policys_memory():
    """A policy whose action depends only on its memory (a step counter) reproduces the same
    open-loop action sequence as a stateless policy reading the time from the env's state."""
    env, params = gymnax.make("CartPole-v1")
    pattern = jnp.array([0, 0, 1, 1, 1, 0, 1, 0, 0, 1], jnp.int32)

    def act_memory(obs, count, key):
        del obs, key
        return pattern[count % 10], count + 1

    key = jax.random.key(2)
    returns, lengths = evaluation.evaluate(key, act_memory, env, params, num_episodes=3,
                                           max_steps=80, memory=jnp.zeros(3, jnp.int32))
    def open_loop():  # a fresh step counter per episode
        t = {"step": 0}

        def act(obs, key):
            a = pattern[t["step"] % 10]
            t["step"] += 1
            return a

        return act

    for e in range(3):
        ret, length = _loop_first_episode(env, params, key, open_loop(), e, 3, 80)
        assert returns[e] == pytest.approx(ret) and int(lengths[e]) == length
    # Without the carried memory (always count 0) the policy is always-left and falls sooner.
    _, stuck = evaluation.evaluate(key, lambda o, m, k: (pattern[0], m), env, params,
                                   num_episodes=3, max_steps=80, memory=jnp.zeros(3, jnp.int32))
    assert np.all(np.asarray(stuck) < np.asarray(lengths))


def test_eval_blocks_evaluates_after_every_kth_update_and_carries_the_value():
    from flax import struct

    @struct.dataclass
    class S:
        n: jax.Array
        eval_return: jax.Array

    def update(s):
        return s.replace(n=s.n + 1), {"train/n": s.n + 1.0}

    def evaluate_state(s):
        return s, 10.0 * s.n  # "return" = 10 x updates done

    s, m = evaluation.eval_blocks(S(jnp.int32(0), jnp.float32(0.0)), 7, eval_every=3, update=update,
                                  evaluate_state=evaluate_state)
    np.testing.assert_array_equal(m["train/n"], np.arange(1, 8))
    np.testing.assert_array_equal(m["eval/fresh"], [0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(m["eval/episode_return"], [0, 0, 30, 30, 30, 60, 60])
    assert float(s.eval_return) == 60.0 and int(s.n) == 7


def test_ppo_evaluation_uses_the_frozen_pooled_statistics():
    cfg = ppo.PPOConfig(env_name="Pendulum-v1", num_envs=4, num_steps=16, total_timesteps=4 * 16 * 2,
                        num_minibatches=2, update_epochs=1, normalize_obs=True, eval_every=2,
                        eval_episodes=2, eval_max_steps=20)
    recipe = ppo.make_train(cfg)
    state, metrics = jax.jit(recipe.train)(jax.random.key(0), ppo.HParams())
    stats = ppo.single_obs_stats(state.env_state)
    assert stats is not None and float(stats.count) > 4 * 16 * 2  # pooled over the 4 envs
    # the last evaluation redone by hand: frozen statistics, greedy mean action, raw env
    pre = state.replace(key=jax.random.key(0))
    _, mean_ret = ppo.evaluate_state(pre, config=cfg, eval_env=recipe.eval_env,
                                     env_params=recipe.env_params, network=recipe.network)
    act = ppo.policy_act(state.params, stats, network=recipe.network)
    k_eval = jax.random.split(jax.random.key(0))[1]
    by_hand = np.mean([_loop_first_episode(recipe.eval_env, recipe.env_params, k_eval, act, e, 2, 20)[0]
                       for e in range(2)])
    assert float(mean_ret) == pytest.approx(by_hand, rel=1e-4)
    assert metrics["eval/fresh"].tolist() == [0.0, 1.0]


def test_exported_policy_reloads_to_the_same_actions(tmp_path):
    cfg = ppo.PPOConfig(env_name="Pendulum-v1", num_envs=4, num_steps=8, total_timesteps=32,
                        num_minibatches=2, update_epochs=1, normalize_obs=True)
    recipe = ppo.make_train(cfg)
    state, _ = jax.jit(recipe.train)(jax.random.key(1), ppo.HParams())
    stats = ppo.single_obs_stats(state.env_state)
    path = evaluation.export_policy(str(tmp_path / "policy"), recipe.network, state.params, stats,
                                    info={"env": cfg.env_name})
    act, params = evaluation.load_policy(path)
    obs = jax.random.normal(jax.random.key(2), (5, 3)) * 3.0
    expected = recipe.network.apply(state.params, wrappers.normalize(stats, obs), method="act")
    np.testing.assert_allclose(act(params, obs), expected, rtol=1e-6, atol=1e-6)
    # the normalisation is part of the export: without it the actions differ
    assert not np.allclose(recipe.network.apply(state.params, obs, method="act"), expected)
    with pytest.raises(FileExistsError, match="never overwrites"):
        evaluation.export_policy(str(tmp_path / "policy"), recipe.network, state.params, stats)


def test_load_policy_refuses_a_foreign_class(tmp_path):
    cfg = ppo.PPOConfig(num_envs=2, num_steps=8, total_timesteps=16, num_minibatches=2)
    recipe = ppo.make_train(cfg)
    params = recipe.network.init(jax.random.key(0), jnp.zeros(4))
    path = evaluation.export_policy(str(tmp_path / "p"), recipe.network, params)
    sidecar = str(tmp_path / "p.json")
    text = open(sidecar).read().replace("lfx.rl.networks:ActorCritic", "os:system")
    open(sidecar, "w").write(text)
    with pytest.raises(ArtifactError, match="not an lfx network"):
        evaluation.load_policy(path)
