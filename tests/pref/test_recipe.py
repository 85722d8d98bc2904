"""The preference recipe: starts at log 2, LoRA starts at the reference, seeds vmap, DPO learns."""

import dataclasses

import jax
import numpy as np
import pytest

from lfx.pref import recipe as rc
from lfx.pref.sequence import response_logps


def _config(model, **kw):
    base = dict(model=model, num_updates=20, batch_size=32, eval_every=10)
    return rc.PrefConfig(**{**base, **kw})


@pytest.mark.parametrize("lora_rank", [0, 4])
def test_first_update_is_at_the_reference_so_dpo_starts_at_log_2(task, lora_rank):
    params, model, data, _ = task
    recipe = rc.make_train(_config(model, lora_rank=lora_rank, num_updates=1, eval_every=0))
    state = recipe.init(jax.random.key(0), rc.HParams(), params, data)
    policy = recipe.policy(state, params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), policy, params)
    _, metrics = recipe.run(state, rc.HParams(), params, data, num_updates=1)
    np.testing.assert_allclose(metrics["train/loss"][0], np.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(metrics["train/rewards_margins"][0], 0.0, atol=1e-6)


def test_reference_log_probs_are_those_of_the_frozen_reference(task):
    params, model, data, _ = task
    recipe = rc.make_train(_config(model, num_updates=5, eval_every=0))
    before = jax.tree.map(np.array, params)
    state, _ = jax.jit(recipe.train)(jax.random.key(0), rc.HParams(), params, data)
    jax.tree.map(np.testing.assert_array_equal, before, params)  # the reference never moves
    expect = response_logps(params, model, data.chosen_tokens, data.chosen_roles,
                            num_target=12).token
    np.testing.assert_allclose(state.ref_chosen, expect, rtol=2e-5, atol=1e-5)


def test_vmapped_seeds_equal_a_loop(task):
    params, model, data, _ = task
    recipe = rc.make_train(_config(model, num_updates=4, eval_every=2))
    keys = jax.random.split(jax.random.key(3), 2)
    _, batched = jax.jit(jax.vmap(recipe.train, (0, None, None, None)))(keys, rc.HParams(), params,
                                                                         data)
    for i in range(2):
        _, one = jax.jit(recipe.train)(keys[i], rc.HParams(), params, data)
        for k in ("train/loss", "eval/reward", "eval/kl"):
            np.testing.assert_allclose(batched[k][i], one[k], rtol=2e-4, atol=2e-5)


def test_dpo_raises_the_true_reward_above_the_reference(task):
    """Fixed seeds; the reference's reward on this task is ~0 and DPO's reaches 0.24-0.27 after 60
    updates (measured); a sign error in the loss drives it below the reference instead."""
    params, model, data, _ = task
    recipe = rc.make_train(_config(model, num_updates=60, eval_every=60))
    keys = jax.random.split(jax.random.key(0), 2)
    _, m = jax.jit(jax.vmap(recipe.train, (0, None, None, None)))(keys, rc.HParams(lr=3e-3),
                                                                  params, data)
    reward, ref = np.asarray(m["eval/reward"][:, -1]), np.asarray(m["eval/reference_reward"][:, -1])
    assert (reward > ref + 0.15).all(), (reward, ref)
    assert (np.asarray(m["eval/kl"][:, -1]) > 0).all()
    assert (np.asarray(m["eval/win_rate"][:, -1]) > 0.7).all()


def test_bad_input_is_refused_before_compiling(task):
    params, model, data, _ = task
    with pytest.raises(ValueError, match="known loss types: sigmoid, hinge"):
        rc.make_train(_config(model, loss_type="dpo"))
    with pytest.raises(ValueError, match="LlamaConfig"):
        rc.make_train(rc.PrefConfig())
    recipe = rc.make_train(_config(model))
    with pytest.raises(ValueError, match="beta=0.0 must be finite and > 0"):
        recipe.train(jax.random.key(0), rc.HParams(beta=0.0), params, data)
    cut = dataclasses.replace(data, rejected_tokens=data.rejected_tokens[:-1])
    with pytest.raises(ValueError, match=r"must all be \[N, T\]"):
        recipe.train(jax.random.key(0), rc.HParams(), params, cut)
    with pytest.raises(ValueError, match="response_len=40"):
        rc.check_data(_config(model, response_len=40), data)


@pytest.mark.parametrize("objective", ["dpo", "simpo", "orpo"])
def test_first_update_loss_is_the_objective_on_the_drawn_batch(task, objective):
    """The recipe's wiring: the loss of update 1 equals the objective's formula evaluated with
    independently computed log-probs of the same pairs (catches swapped chosen/rejected or sum
    vs mean log-probs)."""
    from lfx.pref import losses
    params, model, data, _ = task
    cfg = _config(model, objective=objective, num_updates=1, eval_every=0, batch_size=8)
    recipe = rc.make_train(cfg)
    hp = rc.HParams(beta=2.0 if objective != "dpo" else 0.1)
    state = recipe.init(jax.random.key(1), hp, params, data)
    _, m = recipe.run(state, hp, params, data, num_updates=1)
    _, k_batch = jax.random.split(state.key)
    idx = jax.random.randint(k_batch, (8,), 0, data.num_pairs)
    c = response_logps(params, model, data.chosen_tokens[idx], data.chosen_roles[idx], num_target=12)
    r = response_logps(params, model, data.rejected_tokens[idx], data.rejected_roles[idx],
                       num_target=12)
    if objective == "dpo":
        expect = np.log(2.0)
    elif objective == "simpo":
        expect = np.mean(losses.simpo_loss(c.mean, r.mean, beta=2.0, gamma_beta_ratio=0.5))
    else:
        nll = -np.sum(c.sum) / np.sum(c.count)
        expect = np.mean(losses.orpo_loss(c.mean, r.mean, nll, beta=2.0)[0])
    np.testing.assert_allclose(m["train/loss"][0], expect, rtol=2e-5)


def test_reward_objectives_refuse_data_without_rewards_and_alol_learns(task):
    """A-LoL trains on the responses' rewards: data without them are refused before compiling;
    with them, 40 updates raise the reward above the reference's (measured 0.178 against the
    reference's -0.003; asserted > ref + 0.08)."""
    params, model, data, _ = task
    cfg = _config(model, objective="alol", num_updates=40, eval_every=40)
    with pytest.raises(ValueError, match="trains on rewards"):
        rc.check_data(cfg, data.replace(chosen_reward=None, rejected_reward=None))
    recipe = rc.make_train(cfg)
    _, m = jax.jit(recipe.train)(jax.random.key(0), rc.HParams(lr=3e-3), params, data)
    assert float(m["eval/reward"][-1]) > float(m["eval/reference_reward"][-1]) + 0.08
