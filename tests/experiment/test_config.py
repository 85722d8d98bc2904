"""One config source: dataclass -> ConfigDict -> the same dataclass; bad keys and values refused."""

import dataclasses

import ml_collections
import pytest

from lfx.experiment import ConfigError, RunConfig, from_configdict, to_configdict
from lfx.experiment.cli import parse_sweep, sweep_settings
from lfx.experiment.config import describe_fields
from lfx.rl import ppo


def test_round_trip_gives_back_the_same_dataclasses():
    static = ppo.PPOConfig(env_name="brax/hopper", env_kwargs=(("backend", "spring"),),
                           hidden_sizes=(32, 16), anneal_lr=False)
    run, hp = RunConfig(num_seeds=3), ppo.HParams(lr=1e-3)
    c = to_configdict(static, run, hparams=hp)
    assert c.env_kwargs.backend == "spring" and c.hparams.lr == 1e-3 and c.num_seeds == 3
    assert from_configdict(c, ppo.PPOConfig, RunConfig, hparams=ppo.HParams) == (static, run, hp)


def test_every_dataclass_field_is_a_config_field():
    c = to_configdict(ppo.PPOConfig(), RunConfig(), hparams=ppo.HParams())
    for cls in (ppo.PPOConfig, RunConfig):
        assert {f.name for f in dataclasses.fields(cls)} <= set(c)
    assert {f.name for f in dataclasses.fields(ppo.HParams)} == set(c.hparams)
    lines = describe_fields(c)
    assert "config.hparams.lr = 0.00025" in lines and "config.env_kwargs = {}" in lines


def test_unknown_fields_are_refused_naming_the_closest():
    c = to_configdict(ppo.PPOConfig(), RunConfig(), hparams=ppo.HParams())
    c.num_env = 4
    with pytest.raises(ConfigError, match="Unknown config field 'num_env'.*'num_envs'"):
        from_configdict(c, ppo.PPOConfig, RunConfig, hparams=ppo.HParams)
    c = to_configdict(ppo.PPOConfig(), RunConfig(), hparams=ppo.HParams())
    c.hparams.learning_rate = 1e-3
    with pytest.raises(ConfigError, match="config.hparams.learning_rate"):
        from_configdict(c, ppo.PPOConfig, RunConfig, hparams=ppo.HParams)


@pytest.mark.parametrize("field,value,message", [
    ("num_envs", 2.5, "must be an integer"),
    ("num_envs", True, "must be an integer"),
    ("anneal_lr", 1, "true or false"),
    ("env_name", 3, "must be a string"),
    ("hidden_sizes", "64,64", "must be a tuple"),
])
def test_values_of_the_wrong_type_are_refused(field, value, message):
    c = ml_collections.ConfigDict({field: value})
    with pytest.raises(ConfigError, match=message):
        from_configdict(c, ppo.PPOConfig)


def test_integral_floats_become_ints():
    (static,) = from_configdict(ml_collections.ConfigDict({"total_timesteps": 5e5}), ppo.PPOConfig)
    assert static.total_timesteps == 500_000 and isinstance(static.total_timesteps, int)


@pytest.mark.parametrize("spec,message", [
    ("lr=", "needs a comma-separated list"),
    ("lr=1e-3,", "needs a comma-separated list"),
    ("lr=1e-3;lr=1e-4", "names 'lr' twice"),
    ("lr=fast", "must be numbers"),
    ("lr=inf", "must be finite"),
    ("learning_rate=1e-3", "not a traced HParams field"),
    ("lr", "must look like name=v1,v2"),
])
def test_bad_sweeps_are_refused(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_sweep(spec, ppo.HParams)


def test_a_sweep_is_the_cartesian_grid_around_the_base():
    settings, dicts, labels = sweep_settings(ppo.HParams(ent_coef=0.5), "lr=1e-4,1e-3;clip_eps=0.1,0.2")
    assert [(s.lr, s.clip_eps, s.ent_coef) for s in settings] == [
        (1e-4, 0.1, 0.5), (1e-4, 0.2, 0.5), (1e-3, 0.1, 0.5), (1e-3, 0.2, 0.5)]
    assert labels[1] == "lr=0.0001, clip_eps=0.2" and dicts[0]["gamma"] == 0.99
