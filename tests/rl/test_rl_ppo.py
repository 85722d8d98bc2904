"""The PPO recipe: vmap == loop, no retrace on new hyperparameters, the lr schedule inside optax,
pluggable objective, learning."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lfx.rl import losses, ppo

TINY = ppo.PPOConfig(num_envs=2, num_steps=16, total_timesteps=2 * 16 * 3, num_minibatches=2, update_epochs=2)


def _leaves_close(a, b, **kw):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


def test_vmapped_seeds_equal_single_runs():
    train = ppo.make_train(TINY).train
    keys = jax.random.split(jax.random.key(0), 3)
    batched_state, batched_metrics = jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, ppo.HParams())
    single = jax.jit(train)
    for i in range(3):
        state, metrics = single(keys[i], ppo.HParams())
        row = jax.tree.map(lambda x, i=i: x[i], batched_state.params)
        _leaves_close(row, state.params, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            batched_metrics["train/value_loss"][i], metrics["train/value_loss"], rtol=1e-4, atol=1e-6)


def test_unrolled_rollout_scan_gives_the_same_run():
    """`rollout_unroll` only changes how the scan is compiled (a GPU launch-count knob), not the run."""
    base = jax.jit(ppo.make_train(TINY).train)(jax.random.key(4), ppo.HParams())
    for unroll in (4, 16):  # 16 = num_steps: the whole rollout in one iteration
        run = jax.jit(ppo.make_train(dataclasses.replace(TINY, rollout_unroll=unroll)).train)(
            jax.random.key(4), ppo.HParams())
        _leaves_close(run[0].params, base[0].params, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            run[1]["train/value_loss"], base[1]["train/value_loss"], rtol=1e-4, atol=1e-6)


def test_seeds_by_hparams_grid_in_one_call_matches_single_runs():
    train = ppo.make_train(TINY).train
    keys = jax.random.split(jax.random.key(1), 2)
    lrs = jnp.array([1e-4, 1e-2])
    hps = jax.tree.map(lambda x: jnp.full((2,), x, jnp.float32), ppo.HParams()).replace(lr=lrs)
    sweep = jax.jit(jax.vmap(jax.vmap(train, in_axes=(0, None)), in_axes=(None, 0)))
    state, metrics = sweep(keys, hps)
    assert metrics["train/entropy"].shape == (2, 2, TINY.num_updates)
    ref_state, _ = jax.jit(train)(keys[1], ppo.HParams(lr=1e-2))
    _leaves_close(jax.tree.map(lambda x: x[1, 1], state.params), ref_state.params, rtol=1e-5, atol=1e-6)
    # Different learning rates must give different agents.
    p = jax.tree.leaves(state.params)[0]
    assert not np.allclose(p[0, 0], p[1, 0])


def test_no_retrace_when_a_traced_hyperparameter_changes():
    traces = []

    def counting_objective(params, log_ratio, adv, **kw):
        traces.append(1)
        return losses.ppo_clip_objective(params, log_ratio, adv, **kw)

    train = jax.jit(ppo.make_train(TINY, policy_objective=counting_objective).train)
    key = jax.random.key(0)
    jax.block_until_ready(train(key, ppo.HParams(lr=1e-3)))
    n = len(traces)
    jax.block_until_ready(train(key, ppo.HParams(lr=3e-3, ent_coef=0.0, clip_eps=0.1)))
    assert len(traces) == n
    assert train._cache_size() == 1


def test_no_retrace_of_a_chunked_run_when_the_learning_rate_changes():
    """`run` (the harness's chunk) keeps one compilation across lr values, and applies each one."""
    traces = []

    def counting_objective(params, log_ratio, adv, **kw):
        traces.append(1)
        return losses.ppo_clip_objective(params, log_ratio, adv, **kw)

    recipe = ppo.make_train(dataclasses.replace(TINY, anneal_lr=False), policy_objective=counting_objective)
    run = jax.jit(recipe.run, static_argnames="num_updates")
    state = jax.jit(recipe.init)(jax.random.key(0), ppo.HParams())
    counts = []
    for lr in (1e-3, 3e-3, 2e-4):
        _, metrics = jax.block_until_ready(run(state, ppo.HParams(lr=lr), num_updates=2))
        np.testing.assert_array_equal(metrics["train/lr"], np.float32(lr))
        counts.append(len(traces))
    assert counts[0] > 0 and counts[1:] == counts[:1] * 2
    assert run._cache_size() == 1


# Four updates of two epochs x two minibatches: the schedule must count updates, not optimiser steps.
FOUR = dataclasses.replace(TINY, total_timesteps=2 * 16 * 4)


@pytest.mark.parametrize("anneal", [True, False])
def test_logged_learning_rate_anneals_linearly_from_lr_to_lr_over_num_updates(anneal):
    lr = 1e-3
    _, metrics = jax.jit(ppo.make_train(dataclasses.replace(FOUR, anneal_lr=anneal)).train)(
        jax.random.key(0), ppo.HParams(lr=lr))
    got = np.asarray(metrics["train/lr"])
    n = FOUR.num_updates
    assert n == 4
    if anneal:
        # lr * (1 - u / N) for u = 0..N-1, in float32 as the recipe computes it.
        expected = np.float32(lr) * (np.float32(1) - np.arange(n, dtype=np.float32) / np.float32(n))
        np.testing.assert_array_equal(got, expected)
        assert got[0] == np.float32(lr)
        np.testing.assert_allclose(got[-1], lr / n, rtol=1e-6)
    else:
        np.testing.assert_array_equal(got, np.full(n, np.float32(lr)))


def _adam_state(opt_state):
    adam = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))
            if isinstance(s, optax.ScaleByAdamState)]
    assert len(adam) == 1
    return adam[0]


@pytest.mark.parametrize("anneal", [True, False])
def test_each_update_moves_the_parameters_by_minus_its_lr_times_the_adam_direction(anneal):
    """One epoch, one minibatch: update u is one Adam step, delta = -lr_u * m_hat / (sqrt(v_hat) + eps).

    The direction is rebuilt by hand from the Adam moments after the step (optax's bias correction,
    eps = 1e-5), so a schedule that is off by one update, counts optimiser steps or is not applied
    at all shows up as a wrong scale.
    """
    cfg = dataclasses.replace(FOUR, update_epochs=1, num_minibatches=1, anneal_lr=anneal)
    lr = 1e-2  # large enough that float32 rounding of p_new - p_old is far below the step
    recipe = ppo.make_train(cfg)
    hp = ppo.HParams(lr=lr)
    update = jax.jit(recipe.update)
    state = jax.jit(recipe.init)(jax.random.key(3), hp)
    for u in range(recipe.num_updates):
        new_state, metrics = update(state, hp)
        adam = _adam_state(new_state.opt_state)
        t = int(adam.count)
        assert t == u + 1
        expected_lr = lr * (1 - u / cfg.num_updates) if anneal else lr
        np.testing.assert_allclose(metrics["train/lr"], expected_lr, rtol=1e-6)
        leaves = (jax.tree.leaves(x) for x in (state.params, new_state.params, adam.mu, adam.nu))
        for p0, p1, m, v in zip(*leaves, strict=True):
            m_hat = np.asarray(m, np.float64) / (1 - 0.9**t)
            v_hat = np.asarray(v, np.float64) / (1 - 0.999**t)
            direction = m_hat / (np.sqrt(v_hat) + 1e-5)
            delta = np.asarray(p1, np.float64) - np.asarray(p0, np.float64)
            np.testing.assert_allclose(delta, -expected_lr * direction, rtol=1e-4, atol=2e-7)
        state = new_state


def test_chunked_run_equals_one_train_call():
    """init + run(2) + run(n - 2) == train: the lr schedule resumes from the optimiser's count."""
    recipe = ppo.make_train(FOUR)
    key, hp = jax.random.key(5), ppo.HParams(lr=1e-3)
    whole_state, whole = jax.jit(recipe.train)(key, hp)
    run = jax.jit(recipe.run, static_argnames="num_updates")
    state = jax.jit(recipe.init)(key, hp, None)
    state, first = run(state, hp, num_updates=2)
    state, rest = run(state, hp, num_updates=recipe.num_updates - 2)
    _leaves_close(state.params, whole_state.params, rtol=0, atol=0)
    np.testing.assert_array_equal(np.concatenate([first["train/lr"], rest["train/lr"]]), whole["train/lr"])
    assert ppo.make_ppo is ppo.make_train and recipe.num_updates == FOUR.num_updates == 4


def test_objective_params_are_passed_through_and_change_the_update():
    # A pluggable objective whose meta-parameter scales the surrogate: scale 0 leaves the policy
    # head untouched by the policy loss, scale 1 is the policy-gradient surrogate.
    def scaled_pg(scale, log_ratio, adv, **kw):
        return scale * losses.policy_gradient_objective(None, log_ratio, adv)[0], {}

    cfg = dataclasses.replace(TINY, update_epochs=1, num_minibatches=1)
    train = jax.jit(ppo.make_train(cfg, policy_objective=scaled_pg).train)
    hp = ppo.HParams(ent_coef=0.0)
    key = jax.random.key(2)
    s0, _ = train(key, hp, jnp.float32(0.0))
    s1, _ = train(key, hp, jnp.float32(1.0))
    init = jax.jit(ppo.make_ppo(cfg).init)(key, hp)
    actor_out0 = s0.params["params"]["Dense_0"]["kernel"]
    actor_out1 = s1.params["params"]["Dense_0"]["kernel"]
    np.testing.assert_allclose(actor_out0, init.params["params"]["Dense_0"]["kernel"])
    assert not np.allclose(actor_out1, actor_out0)


def test_first_update_of_ppo_equals_policy_gradient_at_ratio_one():
    # With one epoch and one minibatch, the only gradient step sees r = 1, where the clipped and
    # unclipped surrogates have the same value and gradient.
    cfg = dataclasses.replace(TINY, update_epochs=1, num_minibatches=1, total_timesteps=32)
    key = jax.random.key(4)
    a, _ = jax.jit(ppo.make_train(cfg).train)(key, ppo.HParams())
    pg = ppo.make_train(dataclasses.replace(cfg, objective="policy_gradient"))
    b, _ = jax.jit(pg.train)(key, ppo.HParams())
    _leaves_close(a.params, b.params, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(num_minibatches=3), "does not divide the batch"),
        (dict(env_name="CartPol-v1"), "Did you mean"),
        (dict(network="minatar_conv"), "expects a MinAtar"),
        (dict(total_timesteps=10), "smaller than one batch"),
        (dict(activation="sigmoid"), "Unknown activation"),
        (dict(num_envs=0), "must be positive"),
        (dict(rollout_unroll=0), "rollout_unroll must be positive"),
    ],
)
def test_invalid_config_is_rejected_before_compiling(change, message):
    with pytest.raises(ValueError, match=message):
        ppo.make_ppo(dataclasses.replace(ppo.PPOConfig(), **change))


@pytest.mark.parametrize("field, value", [("lr", -1e-3), ("gamma", 1.5), ("max_grad_norm", 0.0)])
def test_invalid_hparams_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        ppo.HParams(**{field: value}).validate()
    with pytest.raises(ValueError, match=field):
        ppo.make_train(TINY).train(jax.random.key(0), ppo.HParams(**{field: value}))


def test_cartpole_learns_past_threshold():
    """PureJaxRL defaults, one fixed seed, 1.5e5 steps: the return must pass 150 (random: ~22)."""
    cfg = ppo.PPOConfig(total_timesteps=150_000)
    _, metrics = jax.jit(ppo.make_train(cfg).train)(jax.random.key(0), ppo.HParams())
    returns = np.asarray(metrics["train/episode_return"])
    assert returns[:5].mean() < 60
    assert returns[-10:].mean() > 150, returns[-10:]
