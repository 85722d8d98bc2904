"""Recurrent PPO: resets at episode starts, the update's re-run reproduces the rollout, vmap == loop,
the observation mask, and learning a memory task a feed-forward policy cannot solve."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx import envs
from lfx.envs import partial
from lfx.rl import losses, ppo, ppo_rnn
from lfx.rl.recurrent import ActorCriticRNN, ScannedGRU

TINY = ppo_rnn.Config(num_envs=4, num_steps=32, total_timesteps=4 * 32 * 2, num_minibatches=2, update_epochs=2,
                      hidden_size=16, embed_size=16, head_size=16)


def _leaves_close(a, b, **kw):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


# ---------------------------------------------------------------------------------------------
# The hidden state is reset exactly where an episode starts.

T, N, D, H = 10, 2, 3, 8
RESET_AT = (4, 7)  # env 0 starts a new episode at step 4, env 1 at step 7


def _sequence():
    k_x, k_h = jax.random.split(jax.random.key(0))
    x = jax.random.normal(k_x, (T, N, D))
    h0 = jax.random.normal(k_h, (N, H))  # a non-zero carry from an earlier episode
    reset = np.zeros((T, N), bool)
    for n, t in enumerate(RESET_AT):
        reset[t, n] = True
    return x, h0, jnp.asarray(reset)


def test_gru_hidden_state_after_a_reset_equals_a_fresh_run_on_the_suffix():
    x, h0, reset = _sequence()
    gru = ScannedGRU(H)
    params = gru.init(jax.random.key(1), h0, (x, reset))
    apply = jax.jit(gru.apply)
    _, ys = apply(params, h0, (x, reset))
    _, ys_no_reset = apply(params, h0, (x, jnp.zeros_like(reset)))
    for n, t in enumerate(RESET_AT):
        # After the reset: a fresh run from zeros over the suffix alone.
        fresh_h = jnp.zeros((1, H))
        _, ys_fresh = apply(params, fresh_h, (x[t:, n:n + 1], jnp.zeros((T - t, 1), bool)))
        np.testing.assert_allclose(ys[t:, n], ys_fresh[:, 0], rtol=1e-6, atol=1e-6)
        # Before it: untouched (the reset acts exactly at its step, not earlier).
        np.testing.assert_allclose(ys[:t, n], ys_no_reset[:t, n], rtol=1e-6, atol=1e-6)
        # Without the reset the memory of h0 and the earlier steps would leak into the new episode.
        assert np.max(np.abs(ys_no_reset[t:, n] - ys_fresh[:, 0])) > 1e-2


def test_actor_critic_outputs_after_a_reset_equal_a_fresh_run_and_memory_false_is_stepwise():
    x, h0, reset = _sequence()
    net = ActorCriticRNN(action_dim=3, hidden_size=H, embed_size=8, head_size=8)
    params = net.init(jax.random.key(2), h0, x, reset)
    apply = jax.jit(net.apply)
    _, pi, value = apply(params, h0, x, reset)
    for n, t in enumerate(RESET_AT):
        _, pi_f, value_f = apply(params, jnp.zeros((1, H)), x[t:, n:n + 1], jnp.zeros((T - t, 1), bool))
        np.testing.assert_allclose(pi.logits[t:, n], pi_f.logits[:, 0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(value[t:, n], value_f[:, 0], rtol=1e-5, atol=1e-6)
    # memory=False: every step is a fresh run from zeros on that observation alone.
    ff = net.clone(memory=False)
    _, pi_ff, _ = ff.apply(params, h0, x, reset)
    _, pi_1, _ = jax.vmap(lambda o: net.apply(params, jnp.zeros((N, H)), o[None], jnp.zeros((1, N), bool)))(x)
    np.testing.assert_allclose(pi_ff.logits, pi_1.logits[:, 0], rtol=1e-5, atol=1e-6)
    # `act` is the greedy policy of one episode from its start.
    np.testing.assert_array_equal(net.apply(params, x[:, 0], method="act"),
                                  np.argmax(net.apply(params, jnp.zeros((1, H)), x[:, :1],
                                                      jnp.zeros((T, 1), bool))[1].logits[:, 0], -1))


# ---------------------------------------------------------------------------------------------
# The update re-runs the GRU over the stored sequences and gets the rollout's numbers back.


@pytest.fixture(scope="module")
def tiny():
    """TINY's recipe, its jitted train (compiled once for the module) and two rollouts from init."""
    recipe = ppo_rnn.make_train(TINY)
    rollout = jax.jit(lambda s: ppo_rnn.rollout(s, config=TINY, env=recipe.env, env_params=recipe.env_params,
                                                network=recipe.network))
    state = jax.jit(recipe.init)(jax.random.key(3), ppo_rnn.HParams())
    state, _ = rollout(state)  # a non-zero carry into the next rollout
    h0 = state.hidden
    _, traj = rollout(state)
    return {"recipe": recipe, "train": jax.jit(recipe.train), "params": state.params, "h0": h0, "traj": traj}


def test_update_rerun_reproduces_rollout_log_probs_and_values_so_ratio_is_one(tiny):
    recipe, params, h0, traj = tiny["recipe"], tiny["params"], tiny["h0"], tiny["traj"]
    assert np.abs(np.asarray(h0)).max() > 1e-2
    assert np.asarray(traj.reset[1:]).any(), "the rollout should cross an episode boundary"
    zeros = jnp.zeros_like(traj.value)
    batch = ppo_rnn.sequence_batch(h0, traj, zeros, zeros)
    seq = ppo_rnn.SequenceNetwork(recipe.network)
    apply = jax.jit(seq.apply)
    minibatches = ppo.shuffle_minibatches(jax.random.key(4), batch, num_minibatches=TINY.num_minibatches)
    assert minibatches.action.shape == (TINY.num_minibatches, TINY.envs_per_minibatch, TINY.num_steps)
    hp = ppo_rnn.HParams()
    for k in range(TINY.num_minibatches):
        mb = jax.tree.map(lambda x, k=k: x[k], minibatches)
        pi, value = apply(params, mb.obs)
        log_ratio = pi.log_prob(mb.action) - mb.log_prob
        np.testing.assert_allclose(log_ratio, 0.0, atol=2e-6)
        np.testing.assert_allclose(value, mb.value, rtol=1e-5, atol=1e-5)
        _, metrics = ppo.ppo_loss(params, None, mb._replace(advantage=mb.value), network=seq,
                                  policy_objective=losses.ppo_clip_objective, hparams=hp,
                                  progress=jnp.float32(0), lifetime=jnp.float32(1))
        assert float(metrics["train/clip_frac"]) == 0.0 and float(metrics["train/approx_kl"]) < 1e-9
    # The stored initial hidden state and the reset flags are what make it exact.
    h0_mb, obs, reset = mb.obs
    _, v_zero_h0 = apply(params, (jnp.zeros_like(h0_mb), obs, reset))
    _, v_no_reset = apply(params, (h0_mb, obs, jnp.zeros_like(reset)))
    assert np.max(np.abs(v_zero_h0 - mb.value)) > 1e-3
    if np.asarray(reset[:, 1:]).any():
        assert np.max(np.abs(v_no_reset - mb.value)) > 1e-3


def test_bootstrap_value_continues_the_same_episodes_memory(tiny):
    """V(s'_t) where an episode goes on equals the next step's V(s_{t+1}) (the GRU continues, no reset)."""
    recipe, params, traj = tiny["recipe"], tiny["params"], tiny["traj"]
    _, _, next_value = recipe.network.apply(
        params, traj.hidden.reshape(-1, TINY.hidden_size),
        traj.next_obs.reshape((1, -1) + traj.next_obs.shape[2:]), jnp.zeros((1, traj.value.size), bool))
    next_value = np.asarray(next_value).reshape(traj.value.shape)
    goes_on = ~np.asarray(traj.done[:-1])
    np.testing.assert_allclose(next_value[:-1][goes_on], np.asarray(traj.value[1:])[goes_on], rtol=1e-5, atol=1e-5)
    adv, target = ppo_rnn.compute_advantages(params, traj, network=recipe.network, gamma=0.99, gae_lambda=0.95)
    np.testing.assert_allclose(target, adv + traj.value, rtol=1e-6)
    # A terminated step does not bootstrap: its advantage is r - V(s) + 0 (GAE's recursion stops there).
    term = np.asarray(traj.terminated)
    assert term.any()
    np.testing.assert_allclose(np.asarray(adv)[term], np.asarray(traj.reward - traj.value)[term], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# The recipe: vmapped seeds equal a loop; chunks equal one call.


def test_vmapped_seeds_equal_single_runs(tiny):
    keys = jax.random.split(jax.random.key(0), 3)
    batched_state, batched_metrics = jax.jit(jax.vmap(tiny["recipe"].train, in_axes=(0, None)))(
        keys, ppo_rnn.HParams())
    for i in range(3):
        state, metrics = tiny["train"](keys[i], ppo_rnn.HParams())
        _leaves_close(jax.tree.map(lambda x, i=i: x[i], batched_state.params), state.params, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(batched_state.hidden[i], state.hidden, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(batched_metrics["train/value_loss"][i], metrics["train/value_loss"],
                                   rtol=1e-4, atol=1e-6)


def test_chunked_run_equals_one_train_call(tiny):
    """init + run(1) + run(1) == train: the hidden state and reset flags are carried in the state."""
    recipe = tiny["recipe"]
    assert recipe.num_updates == 2
    key, hp = jax.random.key(6), ppo_rnn.HParams()
    whole_state, whole = tiny["train"](key, hp)
    run = jax.jit(recipe.run, static_argnames="num_updates")
    state = jax.jit(recipe.init)(key, hp)
    state, first = run(state, hp, num_updates=1)
    state, rest = run(state, hp, num_updates=1)
    _leaves_close(state.params, whole_state.params, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(state.hidden, whole_state.hidden, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([first["train/value_loss"], rest["train/value_loss"]]),
                               whole["train/value_loss"], rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# The observation mask.


@pytest.mark.parametrize("keep", [(0, 2), (3, 1)])
def test_mask_keeps_exactly_the_listed_dims(keep):
    raw, params = envs.make("CartPole-v1")
    env = partial.MaskObservation(raw, keep, params)
    space, raw_space = env.observation_space(params), raw.observation_space(params)
    assert space.shape == (len(keep),)
    np.testing.assert_array_equal(space.low, np.asarray(raw_space.low)[list(keep)])
    np.testing.assert_array_equal(space.high, np.asarray(raw_space.high)[list(keep)])
    key = jax.random.key(7)
    obs, s = env.reset(key, params)
    obs_raw, s_raw = raw.reset(key, params)
    np.testing.assert_array_equal(obs, np.asarray(obs_raw)[list(keep)])
    ended = False
    for t in range(60):  # always push right: the pole falls within ~10 steps, then auto-resets
        k = jax.random.fold_in(key, t)
        obs, s, r, term, trunc, info = env.step(k, s, 1, params)
        obs_raw, s_raw, r_raw, term_raw, trunc_raw, info_raw = raw.step(k, s_raw, 1, params)
        np.testing.assert_array_equal(obs, np.asarray(obs_raw)[list(keep)])
        np.testing.assert_array_equal(info["final_observation"], np.asarray(info_raw["final_observation"])[list(keep)])
        assert (r, bool(term), bool(trunc)) == (r_raw, bool(term_raw), bool(trunc_raw))
        ended |= bool(term)
    assert ended


@pytest.mark.parametrize("keep, match", [
    ((), "empty"), ((0, 4), "outside"), ((-1,), "outside"), ((0, 0), "repeats"), ("02", "tuple"),
    ((0.5,), "integer"),
])
def test_bad_masks_are_rejected(keep, match):
    raw, params = envs.make("CartPole-v1")
    with pytest.raises(ValueError, match=match):
        partial.MaskObservation(raw, keep, params)


@pytest.mark.parametrize("changes, match", [
    ({"obs_mask": (0, 4)}, "obs_mask"), ({"num_minibatches": 3}, "divide num_envs"),
    ({"activation": "sine"}, "activation"), ({"hidden_size": 0}, "hidden_size"),
    ({"env_name": "CartPole-v9"}, "Unknown environment"), ({"total_timesteps": 10}, "total_timesteps"),
])
def test_bad_config_is_rejected_before_compiling(changes, match):
    with pytest.raises(ValueError, match=match):
        ppo_rnn.make_train(dataclasses.replace(TINY, **changes))


def test_masked_cartpole_network_sees_only_the_kept_dims():
    recipe = ppo_rnn.make_train(dataclasses.replace(TINY, obs_mask=(0, 2)))
    state = jax.eval_shape(recipe.init, jax.random.key(8), ppo_rnn.HParams())  # shapes only, nothing compiled
    assert state.obs.shape == (TINY.num_envs, 2)
    assert state.params["params"]["embed"]["kernel"].shape == (2, TINY.embed_size)


# ---------------------------------------------------------------------------------------------
# Learning: MemoryChain needs the context bit of the first step at the last one.

MEMORY = ppo_rnn.Config(env_name="MemoryChain-bsuite", env_kwargs=(("memory_length", 5),), num_envs=8,
                        num_steps=32, num_minibatches=2, total_timesteps=8 * 32 * 30, hidden_size=32,
                        embed_size=32, head_size=32, eval_every=30, eval_episodes=64)


def test_recurrent_ppo_solves_memory_chain():
    """Return +1 for recalling the first step's random context bit at the last step, -1 otherwise.

    The last observation carries no trace of the bit, so a memoryless greedy policy is right in about
    half of the episodes (mean return ~0); all 64 greedy episodes right needs the memory.
    """
    _, m = jax.jit(ppo_rnn.make_train(MEMORY).train)(jax.random.key(0), ppo_rnn.HParams(lr=1e-3))
    assert float(m["eval/episode_return"][-1]) == 1.0
    assert float(np.mean(m["train/episode_return"][-5:])) > 0.8


@pytest.mark.slow
def test_feed_forward_ablation_cannot_solve_memory_chain():
    """The same recipe with the hidden state reset every step (memory=False) stays at return ~0."""
    _, m = jax.jit(ppo_rnn.make_train(dataclasses.replace(MEMORY, memory=False)).train)(
        jax.random.key(0), ppo_rnn.HParams(lr=1e-3))
    assert abs(float(np.mean(m["train/episode_return"][-5:]))) < 0.3
    assert abs(float(m["eval/episode_return"][-1])) < 0.5


def test_exported_recurrent_policy_reloads_and_acts_on_an_episode(tmp_path):
    from lfx.rl import evaluation

    x, h0, reset = _sequence()
    net = ActorCriticRNN(action_dim=3, hidden_size=H, embed_size=8, head_size=8)
    params = jax.jit(net.init)(jax.random.key(9), h0, x, reset)
    path = evaluation.export_policy(str(tmp_path / "rnn"), net, params)
    act, loaded = evaluation.load_policy(path)
    np.testing.assert_array_equal(jax.jit(act)(loaded, x[:, 0]), jax.jit(net.apply, static_argnames="method")(
        params, x[:, 0], method="act"))
