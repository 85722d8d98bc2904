"""Task (a): deterministic generation, the exact reward, Bradley-Terry labels, fixed-length sampling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.lm import init_params
from lfx.pref import lexicon as lx

CFG = lx.LexiconTaskConfig(dim=16, hidden_dim=32)


def test_documents_are_deterministic_from_the_seed_and_the_mood_follows_the_topic():
    lang = lx.make_language(0)
    a = lx.sample_documents(np.random.default_rng(5), lang, CFG, 4000)
    b = lx.sample_documents(np.random.default_rng(5), lx.make_language(0), CFG, 4000)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == (4000, CFG.prompt_len + 1) and a[1].shape == (4000, CFG.response_len)
    assert (a[0][:, 0] == lx.tokenizer().bos_id).all()
    r = np.asarray(lx.reward(lx.reward_weights(), a[1]))
    topic = a[0][:, 1] - a[0][:, 1].min()
    by_topic = np.array([r[topic == t].mean() for t in range(len(lx.TOPICS))])
    # E[r | topic] = rate * E[mood] ~ 0.35 * mu_topic: ordered like the topic moods
    order = np.argsort(lang.topic_mood)
    assert np.corrcoef(by_topic[order], lang.topic_mood[order])[0, 1] > 0.95


def test_reward_is_the_mean_lexicon_score():
    tok = lx.tokenizer()
    y = np.array([tok.encode("good the bad bad fun the"), tok.encode("the the the a a a")])
    np.testing.assert_allclose(lx.reward(lx.reward_weights(), y), [(2 - 2) / 6, 0.0])
    y2 = np.array([tok.encode("good great fun happy warm calm")])
    np.testing.assert_allclose(lx.reward(lx.reward_weights(), y2), [1.0])
    w = lx.reward_weights("subset")
    assert (w != 0).sum() == len(lx.POSITIVE) // 2 + len(lx.NEGATIVE) // 2
    wi = lx.reward_weights("intensity")
    assert (np.sign(wi) == np.sign(lx.reward_weights())).all() and not np.allclose(wi, np.sign(wi))
    with pytest.raises(ValueError, match="choose from"):
        lx.reward_weights("sentiment")


def test_bradley_terry_labels_have_the_model_probability():
    rng = np.random.default_rng(0)
    n = 20000
    r1, r2 = np.full(n, 0.1), np.full(n, 0.0)
    first = lx.label_pairs(rng, r1, r2, bt_scale=10.0)
    p = 1 / (1 + np.exp(-1.0))
    assert abs(first.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
    assert lx.label_pairs(rng, np.ones(50), -np.ones(50), bt_scale=50.0).all()


def test_sampled_responses_have_fixed_length_and_no_special_tokens():
    model = CFG.model_config()
    params = init_params(jax.random.key(0), model)
    prompts, _ = lx.sample_documents(np.random.default_rng(0), lx.make_language(0), CFG, 64)
    y = lx.sample_responses(params, model, jnp.asarray(prompts), jax.random.key(1),
                            length=CFG.response_len)
    assert y.shape == (64, CFG.response_len) and int(y.min()) >= 3
    assert int(y.max()) < lx.tokenizer().vocab_size


def test_generate_task_is_deterministic_and_loads(tmp_path):
    cfg = lx.LexiconTaskConfig(num_pretrain_docs=256, pretrain_steps=20, pretrain_batch=32,
                               num_pairs=32, num_eval_prompts=8, dim=16, hidden_dim=32)
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        lx.generate_task(cfg, lambda n, d=d: str(tmp_path / d / n), progress=lambda s: None)
    a = np.load(tmp_path / "a" / lx.PAIRS_FILE)
    b = np.load(tmp_path / "b" / lx.PAIRS_FILE)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])
    assert (a["chosen"] != a["rejected"]).any(axis=1).mean() > 0.9
    params, model, data, meta = lx.load_task(str(tmp_path / "a"))
    assert data.chosen_tokens.shape == (32, cfg.prompt_len + 1 + cfg.response_len)
    assert meta["num_pairs"] == 32 and model.vocab_size == lx.tokenizer().vocab_size
    with pytest.raises(FileNotFoundError, match="pref_task.py"):
        lx.load_task(str(tmp_path / "missing"))
