"""experiments/ppo.py end to end: sweep rows, help, bad input before compiling, kill -9 + resume."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from lfx.experiment import read_rows
from lfx.experiment.metrics import curves

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "experiments", "ppo.py")
TINY = ["--config.total_timesteps=2048", "--config.chunk_size=2", "--config.num_seeds=2",
        "--noprogress"]


def _cmd(*args):
    return [sys.executable, SCRIPT, *args]


def _env():
    return {**os.environ, "JAX_PLATFORMS": "cpu"}


def _run(*args, cwd, timeout=600):
    return subprocess.run(_cmd(*args), env=_env(), capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def _hash(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_a_sweep_writes_each_settings_curve_apart_from_any_directory(tmp_path):
    out = _run("--workdir=w", *TINY, "--sweep=lr=1e-4,1e-3", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    w = tmp_path / "w"
    summary = json.load(open(w / "summary.json"))
    assert [r["setting"]["lr"] for r in summary["runs"]] == [1e-4, 1e-3]
    assert all(len(r["final_returns"]) == 2 for r in summary["runs"])
    assert os.path.getsize(w / "learning_curve.png") > 1000
    rows = read_rows(str(w / "metrics.jsonl"))
    assert len(rows) == 2 * 2 * (2048 // 512)  # settings x seeds x updates
    lr = curves(rows, "train/lr", by="setting")
    # Two distinguishable series, each annealed from its own lr (4 updates: 1, 3/4, 1/2, 1/4).
    np.testing.assert_allclose(lr[0][0], 1e-4 * np.array([1, 0.75, 0.5, 0.25]), rtol=1e-5)
    np.testing.assert_allclose(lr[1][0], 1e-3 * np.array([1, 0.75, 0.5, 0.25]), rtol=1e-5)
    assert "final episodic return" in out.stdout


def test_help_lists_the_config_fields(tmp_path):
    out = _run("--help", cwd=tmp_path, timeout=120)
    for field in ("config.num_envs", "config.hparams.lr", "config.checkpoint_every"):
        assert field in out.stdout, out.stdout[-2000:]
    out = _run("--print_config", "--config.hparams.lr=0.01", cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and "config.hparams.lr = 0.01" in out.stdout


def test_bad_input_is_refused_before_compiling_and_changes_nothing(tmp_path):
    w = tmp_path / "w"
    os.makedirs(w)
    (w / "summary.json").write_text('{"kept": true}')
    before = _hash(w / "summary.json")
    # One case per kind of refusal (each is a subprocess); every validation rule itself is tested
    # in-process (tests/experiment/test_config.py, tests/rl/test_rl_ppo.py) and by
    # scripts/audit_bad_inputs.py.
    cases = {
        "--config.num_minibatches=3": "does not divide the batch",   # PPOConfig.validate
        "--sweep=lr=": "needs a comma-separated list",                # the sweep grammar
        "--config.hparams.lr=inf": "must be finite",                  # HParams
        "--config.num_env=4": "Did you mean --config.num_envs",       # unknown field, at parse time
    }
    for flag, message in cases.items():
        out = _run("--workdir=w", flag, cwd=tmp_path, timeout=180)
        assert out.returncode != 0, flag
        assert message in out.stderr, (flag, out.stderr[-1500:])
    out = _run("--workdir=w", *TINY, cwd=tmp_path, timeout=180)  # results, no checkpoint
    assert out.returncode != 0 and "summary.json" in out.stderr
    assert sorted(os.listdir(w)) == ["summary.json"] or "checkpoints" not in os.listdir(w)
    assert _hash(w / "summary.json") == before


def test_kill_9_then_resume_equals_an_uninterrupted_run_and_a_second_run_is_refused(tmp_path):
    args = ["--config.total_timesteps=51200", "--config.chunk_size=2",
            "--config.checkpoint_every=10", "--config.num_seeds=2", "--noprogress"]
    full = _run("--workdir=full", *args, cwd=tmp_path)
    assert full.returncode == 0, full.stderr[-3000:]

    proc = subprocess.Popen(_cmd("--workdir=killed", *args), env=_env(), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ckpt = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 500
    while time.time() < deadline and proc.poll() is None:
        if ckpt.is_dir() and any(d.isdigit() for d in os.listdir(ckpt)):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGSTOP)  # frozen mid-run, still holding its lock
    second = _run("--workdir=killed", *args, cwd=tmp_path, timeout=180)
    assert second.returncode != 0 and "in use by another run" in second.stderr
    assert f'"pid": {proc.pid}' in second.stderr
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    assert not os.path.exists(tmp_path / "killed" / "summary.json")

    again = _run("--workdir=killed", *args, cwd=tmp_path, timeout=180)  # no --resume: refused
    assert again.returncode != 0 and "--resume" in again.stderr
    resumed = _run("--workdir=killed", "--resume", *args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resumed from update" in resumed.stdout
    a = json.load(open(tmp_path / "full" / "summary.json"))
    b = json.load(open(tmp_path / "killed" / "summary.json"))
    assert a == b
    assert read_rows(str(tmp_path / "full" / "metrics.jsonl")) == read_rows(
        str(tmp_path / "killed" / "metrics.jsonl"))
