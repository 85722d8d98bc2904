"""lfx.meta.evaluate: per-environment PPO settings of held-out environments, and refused configs."""

import dataclasses
import importlib.util
import os

import pytest

from lfx.experiment import ConfigError, from_configdict
from lfx.experiment.cli import load_config
from lfx.meta import evaluate
from lfx.rl import ppo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(variant, **over):
    (c,) = from_configdict(load_config(os.path.join(ROOT, "experiments", "configs", "meta_eval.py")
                                       + ":" + variant), evaluate.EvalConfig)
    return dataclasses.replace(c, **over)


def _override(c, env, **changes):
    table = dict(c.env_overrides_kwargs)
    table[env] = {**table[env], **changes}
    return dataclasses.replace(c, env_overrides_kwargs=tuple(table.items()))


def test_brax_override_reaches_the_ppo_config_and_matches_the_ppo_recipe_config():
    c = _config("brax_heldout")
    cfg, hp = evaluate.cell_settings(c, "brax/inverted_pendulum", 0.5)
    ref = load_config(os.path.join(ROOT, "experiments", "configs", "ppo.py") + ":inverted_pendulum_small")
    # Everything that experiments/configs/ppo.py:inverted_pendulum_small sets for brax PPO...
    for field in ("num_envs", "num_steps", "update_epochs", "num_minibatches", "activation",
                  "normalize_obs", "normalize_reward", "anneal_lr"):
        assert getattr(cfg, field) == ref[field], field
    assert cfg.hidden_sizes == tuple(ref.hidden_sizes)
    assert dict(cfg.env_kwargs) == ref.env_kwargs.to_dict() == {"backend": "spring"}
    assert hp == ppo.HParams(**ref.hparams.to_dict())
    # ...except the lifetime: x0.5 of this environment's own base (not CartPole's 5e4 steps).
    base = dict(c.env_overrides_kwargs)["brax/inverted_pendulum"]["base_timesteps"]
    assert cfg.total_timesteps == base // 2
    # An environment without an override keeps the CartPole settings and default HParams.
    cart, hp_cart = evaluate.cell_settings(c, "CartPole-v1", 2.0)
    assert (cart.num_envs, cart.num_steps, cart.total_timesteps) == (4, 128, 100_000)
    assert not cart.normalize_obs and cart.env_kwargs == () and hp_cart == ppo.HParams()


def test_bad_override_and_missing_brax_are_refused(monkeypatch):
    c = _override(_config("brax_heldout"), "brax/inverted_pendulum", learning_rate=1e-3)
    with pytest.raises(ConfigError, match="unknown keys \\['learning_rate'\\]"):
        evaluate.cell_settings(c, "brax/inverted_pendulum", 1.0)
    c = _override(_config("brax_heldout"), "brax/inverted_pendulum", num_minibatches=3)
    with pytest.raises(ConfigError, match="does not divide the batch"):
        evaluate.cell_settings(c, "brax/inverted_pendulum", 1.0)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "brax" else real(n, *a))
    with pytest.raises(ImportError, match="needs brax"):
        evaluate.check_envs(["CartPole-v1", "brax/inverted_pendulum"])
    evaluate.check_envs(["CartPole-v1"])


def test_bad_eval_configs_are_refused_with_what_to_change():
    c = _config("front")
    assert evaluate.validate(c) == [("CartPole-v1", 1.0), ("CartPole-v1", 0.5), ("CartPole-v1", 2.0)]
    with pytest.raises(ConfigError, match="num_seeds must be >= 1"):
        evaluate.validate(dataclasses.replace(c, num_seeds=0))
    with pytest.raises(ConfigError, match="objectives is empty"):
        evaluate.validate(dataclasses.replace(c, objectives=()))
    with pytest.raises(ConfigError, match="Unknown objective 'no/such'"):
        evaluate.validate(dataclasses.replace(c, objectives=("ppo", "no/such")))
    with pytest.raises(ConfigError, match="window_fraction must be in"):
        evaluate.validate(dataclasses.replace(c, window_fraction=0.0))
    with pytest.raises(ConfigError, match="has cells 0..2"):
        evaluate.parse_cells("99", 3)
    with pytest.raises(ConfigError, match="comma-separated"):
        evaluate.parse_cells("a", 3)
    assert evaluate.parse_cells("", 3) == [0, 1, 2] and evaluate.parse_cells("2,0", 3) == [2, 0]
