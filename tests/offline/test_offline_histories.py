"""Observation histories (lfx.offline.histories, td3_bc_history): the windows against a NumPy loop at
an episode boundary, the bisimulation loss against a NumPy transcription and its zero identity, the GRU
encoder ignoring padding, vmapped updates == a loop, and the wrapped env's windows == the dataset's."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from offline_testutil import uniform_random

from lfx import envs
from lfx.envs.partial import MaskObservation
from lfx.offline import generate, histories
from lfx.offline import td3_bc_history as alg
from lfx.offline.dataset import Dataset
from lfx.offline.types import Spec

H = 3
KEEP = (0, 1)


def _tiny_dataset():
    """Two episodes: rows 0-2 (cut by a timeout at row 2), rows 3-6 (terminal at row 6)."""
    n = 7
    obs = np.arange(n * 3, dtype=np.float32).reshape(n, 3) + 1.0
    return Dataset(observations=obs, actions=np.linspace(-1, 1, n, dtype=np.float32)[:, None],
                   rewards=np.arange(n, dtype=np.float32), next_observations=obs + 100.0,
                   terminals=np.array([0, 0, 0, 0, 0, 0, 1], bool), timeouts=np.array([0, 0, 1, 0, 0, 0, 0], bool))


def _numpy_windows(data, keep, h):
    obs, nxt = np.asarray(data.observations)[:, keep], np.asarray(data.next_observations)[:, keep]
    ends = np.asarray(data.terminals) | np.asarray(data.timeouts)
    n, d = obs.shape
    out, out_next = np.zeros((n, h, d + 1), np.float32), np.zeros((n, h, d + 1), np.float32)
    for i in range(n):
        start = i
        while start > 0 and not ends[start - 1]:
            start -= 1
        for t in range(h):
            j = i - h + 1 + t
            if j >= start:
                out[i, t] = np.append(obs[j], 1.0)
            j += 1
            if j == i + 1:
                out_next[i, t] = np.append(nxt[i], 1.0)
            elif j >= start:
                out_next[i, t] = np.append(obs[j], 1.0)
    return out, out_next


def test_history_windows_match_a_numpy_loop_at_episode_boundaries():
    data = _tiny_dataset()
    batch = histories.history_batches(data, keep=KEEP, history_length=H)
    want, want_next = _numpy_windows(data, list(KEEP), H)
    assert batch.observations.shape == (7, H, 3) and batch.next_observations.shape == (7, H, 3)
    np.testing.assert_array_equal(np.asarray(batch.observations), want)
    np.testing.assert_array_equal(np.asarray(batch.next_observations), want_next)
    # Row 3 starts episode 2: only its own frame is valid; row 2 (timeout) has a full next window
    # whose newest frame is its stored successor.
    np.testing.assert_array_equal(np.asarray(batch.observations[3, :, -1]), [0, 0, 1])
    np.testing.assert_array_equal(np.asarray(batch.next_observations[2, -1]), [107.0, 108.0, 1.0])
    np.testing.assert_array_equal(np.asarray(batch.dones), [0, 0, 0, 0, 0, 0, 1])


def _numpy_bisim(z_i, z_j, r_i, r_j, nz_i, nz_j, gamma):
    d = np.abs(z_i - z_j).sum(-1)
    target = np.abs(r_i - r_j) + gamma * np.abs(nz_i - nz_j).sum(-1)
    return np.mean((d - target) ** 2)


def test_bisimulation_loss_matches_numpy_and_vanishes_on_a_bisimulation():
    # Worked example, one pair: ||z_i - z_j||_1 = 3, |r_i - r_j| = 1, ||z'_i - z'_j||_1 = 2, gamma 0.5:
    # (3 - (1 + 0.5 * 2))^2 = 1.
    one = lambda *x: jnp.asarray([x], jnp.float32)  # noqa: E731
    loss, m = histories.bisimulation_loss(one(0.0, 0.0), one(1.0, 2.0), jnp.array([0.0]), jnp.array([1.0]),
                                          one(0.0, 0.0), one(2.0, 0.0), gamma=0.5)
    assert float(loss) == 1.0 and float(m["train/bisim_latent_dist"]) == 3.0
    assert float(m["train/bisim_target_dist"]) == 2.0
    args = [np.asarray(jax.random.normal(k, s)) for k, s in
            zip(jax.random.split(jax.random.key(0), 6), [(5, 4), (5, 4), (5,), (5,), (5, 4), (5, 4)], strict=True)]
    got, _ = histories.bisimulation_loss(*map(jnp.asarray, args), gamma=0.9)
    np.testing.assert_allclose(float(got), _numpy_bisim(*args, 0.9), rtol=1e-5)
    # Identity: rewards chosen so that ||z_i - z_j|| = |r_i - r_j| + gamma ||z'_i - z'_j|| on every pair.
    z_i, z_j, r_i, _, nz_i, nz_j = args
    nz_i, nz_j = 0.01 * nz_i, 0.01 * nz_j
    r_j = r_i + (np.abs(z_i - z_j).sum(-1) - 0.9 * np.abs(nz_i - nz_j).sum(-1))
    assert np.all(r_j > r_i)
    zero, _ = histories.bisimulation_loss(*map(jnp.asarray, (z_i, z_j, r_i, r_j, nz_i, nz_j)), gamma=0.9)
    assert abs(float(zero)) < 1e-9
    # The target is stop-gradient: no gradient reaches the next representations or the rewards.
    grads = jax.grad(lambda *a: histories.bisimulation_loss(*a, gamma=0.9)[0], argnums=(0, 2, 4))(
        *map(jnp.asarray, args))
    assert float(jnp.max(jnp.abs(grads[0]))) > 0.0
    assert float(jnp.max(jnp.abs(grads[1]))) == 0.0 and float(jnp.max(jnp.abs(grads[2]))) == 0.0


def test_gru_encoder_ignores_padding_frames():
    enc = histories.HistoryEncoder(latent_dim=8, kind="gru", hidden_size=16)
    frames = jax.random.normal(jax.random.key(0), (2, 2))
    real = histories.with_valid_channel(frames, jnp.ones(2, bool))
    pad_zero = jnp.zeros((2, 3))
    pad_junk = pad_zero.at[:, :2].set(5.0)  # junk values, valid flag still 0
    params = enc.init(jax.random.key(1), jnp.concatenate([pad_zero, real]))
    a = enc.apply(params, jnp.concatenate([pad_zero, real]))
    b = enc.apply(params, jnp.concatenate([pad_junk, real]))
    c = enc.apply(params, real)  # the same history without padding
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    np.testing.assert_allclose(np.asarray(a), np.asarray(c), atol=1e-6)


CONFIG = alg.HistoryAgentConfig(hidden_sizes=(32, 32), history_length=H, latent_dim=8, encoder_hidden=16)
SPEC = Spec(len(KEEP) + 1, 1)


def test_vmapped_updates_over_keys_and_bisim_weights_equal_a_loop():
    batch = histories.history_batches(_tiny_dataset(), keep=KEEP, history_length=H)
    runs = (alg.HParams(actor_lr=1e-3, critic_lr=1e-3), alg.HParams(actor_lr=1e-3, critic_lr=1e-3, bisim_weight=0.5))
    seeds = jax.random.split(jax.random.key(3), 2)
    init = jax.jit(alg.init, static_argnums=(1, 2))
    update = jax.jit(alg.update, static_argnums=(3, 4))
    vupdate = jax.jit(jax.vmap(alg.update, in_axes=(0, None, 0, None, None, 0)), static_argnums=(3, 4))
    singles = [init(k, SPEC, CONFIG, hp) for k, hp in zip(seeds, runs, strict=True)]
    batched = jax.tree.map(lambda *x: jnp.stack(x), *singles)
    hp_batch = jax.tree.map(lambda *x: jnp.asarray(x, jnp.float32), *runs)
    for step in range(2):
        keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(seeds, step)
        batched, metrics = vupdate(batched, batch, keys, SPEC, CONFIG, hp_batch)
        outs = [update(a, batch, keys[i], SPEC, CONFIG, runs[i]) for i, a in enumerate(singles)]
        for i, out in enumerate(outs):
            got = jax.tree.leaves(jax.tree.map(lambda x, i=i: x[i], (batched, metrics)))
            for a, b in zip(got, jax.tree.leaves(out), strict=True):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6)
        singles = [a for a, _ in outs]
    assert float(metrics["train/bisim_loss"][1]) > 0.0
    # The encoder moved (the check would be empty if phi were frozen).
    enc = lambda a: jax.tree.leaves(a.critic_params["params"]["encoder"])[0]  # noqa: E731
    assert float(jnp.max(jnp.abs(enc(singles[1]) - enc(init(seeds[1], SPEC, CONFIG, runs[1]))))) > 0.0


def test_wrapped_env_history_equals_the_windows_of_its_rollout():
    env, params = envs.make("Pendulum-v1")
    masked = MaskObservation(env, keep=KEEP, params=params)
    wrapped = histories.HistoryObservation(masked, H, params)
    assert wrapped.observation_space(params).shape == (H, len(KEEP) + 1)
    rollout = functools.partial(generate.rollout_rows, act=uniform_random, env_params=params, num_envs=2,
                                num_steps=230)  # one auto-reset (Pendulum truncates at 200 steps) per env
    key = jax.random.key(5)
    data = generate.rows_to_dataset(jax.jit(functools.partial(rollout, env=masked))(key))
    rows = jax.jit(functools.partial(rollout, env=wrapped))(key)
    env_major = lambda x: np.swapaxes(np.asarray(x), 0, 1).reshape((-1,) + x.shape[2:])  # noqa: E731
    assert bool(np.asarray(data.timeouts).reshape(2, 230)[:, 199].all())
    want = histories.history_batches(data, keep=KEEP, history_length=H)
    np.testing.assert_allclose(env_major(rows[0]), np.asarray(want.observations), atol=1e-6)
    np.testing.assert_allclose(env_major(rows[3]), np.asarray(want.next_observations), atol=1e-6)
