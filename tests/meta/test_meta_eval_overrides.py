"""experiments/eval_objective.py: per-environment PPO settings of held-out environments."""

import importlib.util

import pytest

from experiments import eval_objective
from experiments.configs import meta_eval
from experiments.configs import ppo as ppo_configs
from lfx.rl import ppo


def test_brax_override_reaches_the_ppo_config_and_matches_the_ppo_recipe_config():
    c = meta_eval.get_config("brax_heldout")
    cfg, hp = eval_objective.cell_settings(c, "brax/inverted_pendulum", 0.5)
    ref = ppo_configs.get_config("inverted_pendulum")
    # Everything that experiments/configs/ppo.py:inverted_pendulum sets for brax PPO...
    for field in ("num_envs", "num_steps", "update_epochs", "num_minibatches", "activation",
                  "normalize_obs", "normalize_reward", "anneal_lr"):
        assert getattr(cfg, field) == ref[field], field
    assert cfg.hidden_sizes == tuple(ref.hidden_sizes)
    assert dict(cfg.env_kwargs) == ref.env_kwargs.to_dict() == {"backend": "spring"}
    assert hp == ppo.HParams(**ref.hparams.to_dict())
    # ...except the lifetime: x0.5 of this environment's own base (not CartPole's 5e4 steps).
    assert cfg.total_timesteps == c.env_overrides["brax/inverted_pendulum"].base_timesteps // 2
    # An environment without an override keeps the CartPole settings and default HParams.
    cart, hp_cart = eval_objective.cell_settings(c, "CartPole-v1", 2.0)
    assert (cart.num_envs, cart.num_steps, cart.total_timesteps) == (4, 128, 100_000)
    assert not cart.normalize_obs and cart.env_kwargs == () and hp_cart == ppo.HParams()


def test_bad_override_and_missing_brax_are_refused(monkeypatch):
    c = meta_eval.get_config("brax_heldout")
    c.env_overrides["brax/inverted_pendulum"].learning_rate = 1e-3
    with pytest.raises(ValueError, match="unknown keys \\['learning_rate'\\]"):
        eval_objective.cell_settings(c, "brax/inverted_pendulum", 1.0)
    c = meta_eval.get_config("brax_heldout")
    c.env_overrides["brax/inverted_pendulum"].num_minibatches = 3
    with pytest.raises(ValueError, match="does not divide the batch"):
        eval_objective.cell_settings(c, "brax/inverted_pendulum", 1.0)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "brax" else real(n, *a))
    with pytest.raises(ImportError, match="needs brax"):
        eval_objective.check_envs(["CartPole-v1", "brax/inverted_pendulum"])
    eval_objective.check_envs(["CartPole-v1"])
