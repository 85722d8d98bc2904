"""experiments/meta_train.py on the shared harness: exact resume, refused configs, nothing overwritten."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lfx.experiment import ConfigError, RunConfig, from_configdict
from lfx.experiment.cli import load_config
from lfx.meta import es, lpo_train
from lfx.rl import ppo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "experiments", "meta_train.py")
TINY = ["--config=" + os.path.join(ROOT, "experiments", "configs", "meta_train.py") + ":tiny",
        "--config.num_envs=2", "--config.num_steps=8", "--config.total_timesteps=32",
        "--config.update_epochs=1", "--config.num_minibatches=1", "--config.hidden_sizes=(8,)",
        "--config.population_size=2", "--config.num_generations=3", "--config.checkpoint_every=1",
        "--noprogress"]


def _run(args, cwd, check=True):
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    p = subprocess.run([sys.executable, SCRIPT, *args], cwd=cwd, env=env, capture_output=True,
                       check=False, text=True, timeout=600)
    if check and p.returncode:
        raise AssertionError(p.stdout[-3000:] + p.stderr[-3000:])
    return p


def _rows(path):
    return [json.loads(x) for x in open(os.path.join(path, "metrics.jsonl"))]


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_stopped_then_resumed_equals_uninterrupted(tmp_path):
    full, cut = str(tmp_path / "full"), str(tmp_path / "cut")
    _run([*TINY, f"--workdir={full}"], tmp_path)
    _run([*TINY, f"--workdir={cut}", "--stop_after=2"], tmp_path)
    assert not os.path.exists(os.path.join(cut, "params.npz"))
    _run([*TINY, f"--workdir={cut}", "--resume"], tmp_path)
    a, b = _rows(full), _rows(cut)
    assert [r["step"] for r in b] == [1, 2, 3]  # each generation once (the old loop repeated one)
    assert a == b
    pa, pb = np.load(os.path.join(full, "params.npz")), np.load(os.path.join(cut, "params.npz"))
    for k in pa.files:
        np.testing.assert_array_equal(pa[k], pb[k])
    # A rerun without --resume is refused and leaves the finished run as it was.
    before = {f: _sha(os.path.join(full, f)) for f in ("metrics.jsonl", "params.npz")}
    p = _run([*TINY, f"--workdir={full}"], tmp_path, check=False)
    assert p.returncode != 0 and "already holds checkpoints" in p.stderr + p.stdout
    assert before == {f: _sha(os.path.join(full, f)) for f in before}


def test_bad_config_is_refused_before_compiling_and_changes_nothing(tmp_path):
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "summary.json").write_text("{}")
    h = _sha(wd / "summary.json")
    for extra, message in [
        (["--config.hparams.lr=-0.1"], "lr must be a positive"),
        (["--config.window_fraction=0.0"], "window_fraction must be in (0, 1]"),
        (["--config.env_names=('Acrobot-v1',)"], "return_table_kwargs has no return for"),
        (["--config.drift=ta_lpo_ppo_int"], "Did you mean 'ta_lpo_ppo_init'"),
        (["--config.num_generation=3"], "Did you mean --config.num_generations"),
    ]:
        p = _run([*TINY, f"--workdir={wd}", *extra], tmp_path, check=False)
        assert p.returncode != 0 and message in p.stderr + p.stdout, (extra, p.stderr[-2000:])
    assert _sha(wd / "summary.json") == h and sorted(os.listdir(wd)) == ["summary.json"]


def _parse(**over):
    c = load_config(os.path.join(ROOT, "experiments", "configs", "meta_train.py") + ":tiny")
    for k, v in over.items():
        c[k] = v
    static, _, hp, agent = from_configdict(c, lpo_train.MetaTrainConfig, RunConfig,
                                           hparams=es.HParams, agent_hparams=ppo.HParams)
    lpo_train.validate(static, hp, agent)
    return static


def test_validate_names_what_to_change():
    with pytest.raises(ConfigError, match="lifetime_sampling must be one of"):
        _parse(lifetime_sampling="each")
    with pytest.raises(ConfigError, match="must exceed its floor"):
        _parse(env_names=("Acrobot-v1",), return_table_kwargs={"Acrobot-v1": -600.0})
    with pytest.raises(ConfigError, match="even"):
        _parse(population_size=3)
    with pytest.raises(ConfigError, match="does not divide the batch"):
        _parse(num_minibatches=3)
    static = _parse(env_names=("CartPole-v1", "Acrobot-v1"),
                    return_table_kwargs={"CartPole-v1": 220.0, "Acrobot-v1": -395.0})
    tasks = lpo_train.build_tasks(static)
    assert [(t.name, t.normaliser, t.floor) for t in tasks] == [
        ("CartPole-v1_x1", 220.0, 0.0), ("Acrobot-v1_x1", -395.0, -500.0)]
