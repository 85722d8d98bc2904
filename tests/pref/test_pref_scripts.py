"""experiments/pref_task.py + pref.py + rlhf.py end to end at test size: the task is
deterministic, killed + --resume == uninterrupted, a rerun is refused, bad input is refused."""

import hashlib
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(cwd, script, *args, check=True):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    p = subprocess.run([sys.executable, os.path.join(ROOT, "experiments", script), *args,
                        "--noprogress"], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=600, check=False)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}:\n{p.stdout}\n{p.stderr[-3000:]}")
    return p


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_task_then_dpo_and_rloo_resume_exactly_and_never_overwrite(tmp_path):
    tiny = "--config=" + os.path.join(ROOT, "experiments/configs/pref_task.py:lexicon_tiny")
    _run(tmp_path, "pref_task.py", tiny, "--workdir=task")
    _run(tmp_path, "pref_task.py", tiny, "--workdir=task2")
    assert _digest(tmp_path / "task" / "pairs.npz") == _digest(tmp_path / "task2" / "pairs.npz")
    before = _digest(tmp_path / "task" / "pairs.npz")
    p = _run(tmp_path, "pref_task.py", tiny, "--workdir=task", check=False)  # never overwritten
    assert p.returncode != 0 and _digest(tmp_path / "task" / "pairs.npz") == before
    dpo = ["--config=" + os.path.join(ROOT, "experiments/configs/pref.py:dpo_tiny"),
           "--config.task=task"]
    _run(tmp_path, "pref.py", *dpo, "--workdir=whole")
    _run(tmp_path, "pref.py", *dpo, "--workdir=killed", "--stop_after=10")
    assert not (tmp_path / "killed" / "summary.json").exists()
    _run(tmp_path, "pref.py", *dpo, "--workdir=killed", "--resume")
    assert _digest(tmp_path / "whole" / "metrics.jsonl") == _digest(tmp_path / "killed" /
                                                                    "metrics.jsonl")
    summary = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert summary["loss_type"] == "sigmoid" and len(summary["runs"][0]["final_reward"]) == 2
    before = _digest(tmp_path / "whole" / "summary.json")
    p = _run(tmp_path, "pref.py", *dpo, "--workdir=whole", check=False)
    assert p.returncode != 0 and "--resume" in p.stderr
    assert _digest(tmp_path / "whole" / "summary.json") == before
    rloo = ["--config=" + os.path.join(ROOT, "experiments/configs/rlhf.py:rloo_tiny"),
            "--config.task=task", "--sweep=kl_coef=0.01,0.1"]
    _run(tmp_path, "rlhf.py", *rloo, "--workdir=rloo")
    runs = json.loads((tmp_path / "rloo" / "summary.json").read_text())["runs"]
    assert [r["label"] for r in runs] == ["kl_coef=0.01", "kl_coef=0.1"]
    assert "final_greedy_reward" in runs[0]
    assert (tmp_path / "rloo" / "frontier.png").exists()


def test_bad_input_is_refused_before_anything_is_written(tmp_path):
    dpo = "--config=" + os.path.join(ROOT, "experiments/configs/pref.py:dpo_tiny")
    p = _run(tmp_path, "pref.py", dpo, "--config.task=nowhere", "--workdir=wd", check=False)
    assert p.returncode != 0 and "pref_task.py --workdir=nowhere" in p.stderr
    p = _run(tmp_path, "pref.py", dpo, "--config.loss_type=dpo", "--workdir=wd", check=False)
    assert p.returncode != 0 and "known loss types" in p.stderr
    p = _run(tmp_path, "pref.py", dpo, "--config.hparams.beta=-1", "--workdir=wd", check=False)
    assert p.returncode != 0 and "beta" in p.stderr
    assert not (tmp_path / "wd").exists()
