"""The Bradley-Terry reward model, DPO's implicit reward and the shifted pair sets of task (a).

`task` is the tiny generated task shared by the lfx.pref tests (tests/pref/conftest.py).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.lm.llama import forward
from lfx.pref import lexicon as lx
from lfx.pref import reward_model as rm
from lfx.pref import shift

STUDY = shift.ShiftStudy(num_pairs=128)
THRESHOLD = 0.55  # measured 0.594 and 0.586 (2 seeds, 128 held-out pairs); chance is 0.5
LR = 3e-3
L = 12  # the tiny task's response_len
KEYS = jax.random.split(jax.random.key(0), 2)


def _config(task) -> lx.LexiconTaskConfig:
    """The settings of the shared tiny task (`conftest.task`), from its metadata."""
    return lx.LexiconTaskConfig(**task[3]["config"])


def _vmapped_train(task, num_updates, batch_size):
    params, model, data, _ = task
    recipe = rm.make_train(rm.RewardModelConfig(model=model, num_updates=num_updates,
                                                batch_size=batch_size))
    state, metrics = jax.jit(jax.vmap(recipe.train, (0, None, None, None)))(
        KEYS, rm.HParams(lr=LR), params, data)
    return recipe, state, metrics


@pytest.fixture(scope="module")
def short_runs(task):
    """(recipe, state, metrics) of 2 seeds x 4 updates, vmapped."""
    return _vmapped_train(task, 4, 16)


@pytest.fixture(scope="module")
def trained(task):
    """The reward models' state after 2 seeds x 150 updates of 32 pairs, vmapped."""
    return _vmapped_train(task, 150, 32)[1]


@pytest.fixture(scope="module")
def sets(task):
    return shift.make_sets(task[0], _config(task), lx.reward_weights("lexicon"), STUDY)


def _trl_loss(chosen, rejected, margin=None, center=None):
    """NumPy transcription of TRL's `RewardTrainer.compute_loss`."""
    diff = chosen - rejected - (0.0 if margin is None else margin)
    loss = -np.mean(-np.logaddexp(0.0, -diff))  # logsigmoid(x) = -log(1 + e^-x)
    if center is not None:
        loss += center * np.mean((chosen + rejected) ** 2)
    return loss


def test_bradley_terry_loss_matches_trl_on_worked_values():
    chosen = np.array([1.5, -0.2, 3.0, 0.0], np.float32)
    rejected = np.array([0.5, 0.4, -1.0, 0.0], np.float32)
    margin = np.array([0.1, 0.0, 2.0, -0.5], np.float32)
    # hand value of the plain loss: mean(softplus(-(c - r))) over diffs 1, -0.6, 4, 0
    hand = np.mean(np.log1p(np.exp(-np.array([1.0, -0.6, 4.0, 0.0]))))
    np.testing.assert_allclose(rm.bradley_terry_loss(chosen, rejected), hand, rtol=1e-6)
    for m, c in [(None, None), (margin, None), (None, 0.01), (margin, 0.01)]:
        got = rm.bradley_terry_loss(chosen, rejected, margin=0.0 if m is None else m,
                                    center_rewards_coefficient=0.0 if c is None else c)
        np.testing.assert_allclose(got, _trl_loss(chosen, rejected, m, c), rtol=1e-6)


def test_accuracy_counts_ties_half_and_swapping_flips_it():
    c, r = jnp.array([2.0, 1.0, 0.0, -1.0]), jnp.array([1.0, 1.0, 1.0, -3.0])
    np.testing.assert_allclose(rm.preference_accuracy(c, r), (1 + 0.5 + 0 + 1) / 4)
    np.testing.assert_allclose(rm.preference_accuracy(r, c), 1 - (1 + 0.5 + 0 + 1) / 4)


def test_zero_head_starts_at_log_2(short_runs):
    np.testing.assert_allclose(short_runs[2]["train/loss"][:, 0], np.log(2.0), rtol=1e-6)


def test_swapping_chosen_and_rejected_flips_the_accuracy(task, trained):
    params, model, data, _ = task
    p = jax.tree.map(lambda x: x[0], trained.params)
    c = rm.score_rows(p, model, data.chosen_tokens, data.chosen_roles)
    r = rm.score_rows(p, model, data.rejected_tokens, data.rejected_roles)
    np.testing.assert_allclose(rm.preference_accuracy(c, r) + rm.preference_accuracy(r, c), 1.0)
    assert rm.preference_accuracy(c, r) > 0.5  # the sign: trained to rank chosen first


def test_score_reads_the_last_token_of_one_batched_forward(task):
    params, model, data, _ = task
    p = rm.init_reward_params(params)
    p = {**p, "head": jax.random.normal(jax.random.key(1), p["head"].shape)}
    batched = rm.score(p, model, data.chosen_tokens[:4], data.chosen_roles[:4])
    chunked = rm.score_rows(p, model, data.chosen_tokens[:4], data.chosen_roles[:4], batch_size=2)
    np.testing.assert_allclose(batched, chunked, rtol=1e-5, atol=1e-5)
    truncated = rm.score(p, model, data.chosen_tokens[:4, :-1], data.chosen_roles[:4, :-1])
    assert not np.allclose(batched, truncated)


def _sum_logp(params, model, tokens, num_target):
    logits, _ = forward(params, model, tokens[:, :-1])
    logp = jax.nn.log_softmax(logits, -1)
    picked = jnp.take_along_axis(logp, tokens[:, 1:, None], -1)[..., 0]
    return picked[:, -num_target:].sum(-1)


def test_implicit_reward_is_beta_log_ratio_and_zero_at_the_reference(task):
    params, model, data, _ = task
    tokens, roles = data.chosen_tokens[:8], data.chosen_roles[:8]
    zero = rm.implicit_reward(params, params, model, tokens, roles, 0.1, L)
    np.testing.assert_array_equal(zero, np.zeros(8))
    policy = jax.tree.map(lambda x: x + 0.05 * jax.random.normal(jax.random.key(2), x.shape),
                          params)
    got = rm.implicit_reward(policy, params, model, tokens, roles, 0.3, L)
    expect = 0.3 * (_sum_logp(policy, model, tokens, L)
                    - _sum_logp(params, model, tokens, L))
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-4)
    assert np.abs(expect).max() > 0.01


def test_shift_sets_are_deterministic_and_differ_from_in_distribution(task, sets):
    params, _, data, _ = task
    weights = lx.reward_weights("lexicon")
    again = shift.make_set("prompt_mood", params, _config(task), weights, STUDY)
    np.testing.assert_array_equal(again["chosen"], np.asarray(sets["prompt_mood"].chosen_tokens)
                                  [:, -L:])
    base = sets["in_distribution"]
    assert not np.array_equal(np.asarray(base.chosen_tokens),
                              np.asarray(data.chosen_tokens[:STUDY.num_pairs]))
    for name in shift.SETS[1:]:
        assert not np.array_equal(np.asarray(sets[name].chosen_tokens), np.asarray(base.chosen_tokens))
    # the labels follow Bradley-Terry on the exact reward: chosen mostly has the higher reward
    for name, d in sets.items():
        rc_ = lx.reward(weights, d.chosen_tokens[:, -L:])
        rr = lx.reward(weights, d.rejected_tokens[:, -L:])
        assert rm.preference_accuracy(rc_, rr) > 0.8, name


def test_shifts_change_what_they_claim_to(task, sets):
    params, _, _, _ = task
    language = lx.make_language(_config(task).seed)
    prompts = np.asarray(sets["in_distribution"].eval_prompts)
    flipped = shift.opposite_mood_prompts(prompts, language)
    mood = dict(zip(lx.tokenizer().encode(" ".join(lx.TOPICS)), language.topic_mood))
    np.testing.assert_allclose([mood[t] for t in flipped[:, 1]], [-mood[t] for t in prompts[:, 1]])
    np.testing.assert_array_equal(flipped[:, 2:], prompts[:, 2:])
    # the hot sampler spreads responses over more distinct words than the cool one
    def distinct(name):
        y = np.asarray(sets[name].chosen_tokens)[:, -L:]
        return np.mean([len(set(row)) for row in y])
    assert distinct("response_hot") > distinct("in_distribution") > distinct("response_cool")


def test_vmapped_seeds_equal_a_loop(task, short_runs):
    params, model, data, _ = task
    recipe, batched_state, batched = short_runs
    for i in range(2):
        state, one = jax.jit(recipe.train)(KEYS[i], rm.HParams(lr=LR), params, data)
        for k in ("train/loss", "train/accuracy"):
            np.testing.assert_allclose(batched[k][i], one[k], rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(batched_state.params["head"][i], state.params["head"],
                                   rtol=2e-4, atol=2e-6)


def test_reward_model_learns_held_out_preferences(task, sets, trained):
    """Fixed seeds; held-out in-distribution accuracy measured 0.594 / 0.586 after 150 updates on
    the tiny task's 256 pairs (300 updates overfit: 0.56 / 0.61); a sign error drives it below 1/2."""
    _, model, _, _ = task
    held_out = sets["in_distribution"]

    def accuracy(p):
        c = rm.score_rows(p, model, held_out.chosen_tokens, held_out.chosen_roles)
        r = rm.score_rows(p, model, held_out.rejected_tokens, held_out.rejected_roles)
        return rm.preference_accuracy(c, r)

    acc = np.asarray(jax.vmap(accuracy)(trained.params))
    assert (acc > THRESHOLD).all(), acc


def test_bad_settings_are_refused(task):
    params, model, data, _ = task
    with pytest.raises(ValueError, match="LlamaConfig"):
        rm.make_train(rm.RewardModelConfig())
    with pytest.raises(ValueError, match="lr"):
        rm.HParams(lr=0.0).validate()
    recipe = rm.make_train(rm.RewardModelConfig(model=model, batch_size=10_000))
    with pytest.raises(ValueError, match="exceeds"):
        recipe.init(jax.random.key(0), rm.HParams(), params, data)
    with pytest.raises(ValueError, match="Unknown pair set"):
        shift.make_set("nope", params, _config(task), lx.reward_weights("lexicon"), STUDY)
