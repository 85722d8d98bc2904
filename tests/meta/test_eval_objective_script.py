"""experiments/eval_objective.py on CellLog: a killed run resumed equals an uninterrupted one."""

import hashlib
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "experiments", "eval_objective.py")
TINY = ["--config=" + os.path.join(ROOT, "experiments", "configs", "meta_eval.py") + ":quick",
        "--config.objectives=('ppo', 'lpo/cartpole_cpu')", "--config.base_timesteps=256",
        "--config.num_envs=2", "--config.num_steps=16", "--config.update_epochs=1",
        "--config.num_minibatches=1", "--config.hidden_sizes=(8,)",
        "--config.lifetime_multipliers=(1.0, 2.0)", "--config.heldout_envs=()",
        "--config.progress_chunks=1", "--noprogress"]


def _run(args, cwd, check=True):
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    p = subprocess.run([sys.executable, SCRIPT, *args], cwd=cwd, env=env, capture_output=True,
                       check=False, text=True, timeout=600)
    if check and p.returncode:
        raise AssertionError(p.stdout[-3000:] + p.stderr[-3000:])
    return p


def _cells(path):
    return {r["cell"]: r for r in map(json.loads, open(os.path.join(path, "results.jsonl")))}


def test_cells_resume_equals_uninterrupted_and_a_rerun_is_refused(tmp_path):
    full, cut = str(tmp_path / "full"), str(tmp_path / "cut")
    _run([*TINY, f"--workdir={full}"], tmp_path)
    # "Killed" after its first cell: run only cell 0, then --resume computes only cell 1.
    _run([*TINY, f"--workdir={cut}", "--cells=0"], tmp_path)
    assert list(_cells(cut)) == ["CartPole-v1_x1"]
    p = _run([*TINY, f"--workdir={cut}", "--resume"], tmp_path)
    assert p.stdout.count("CartPole-v1 x") == 1  # cell 0 was not trained again
    assert _cells(full) == _cells(cut)
    assert open(os.path.join(full, "summary.md")).read() == open(os.path.join(cut, "summary.md")).read()
    for f in ("curves_CartPole-v1.png", "drift.png", "aggregate.png"):
        assert os.path.exists(os.path.join(cut, f))
    # A rerun without --resume is refused; the finished run's results are untouched.
    sha = hashlib.sha256(open(os.path.join(full, "results.jsonl"), "rb").read()).hexdigest()
    p = _run([*TINY, f"--workdir={full}"], tmp_path, check=False)
    assert p.returncode != 0 and "already holds" in p.stdout + p.stderr
    assert hashlib.sha256(open(os.path.join(full, "results.jsonl"), "rb").read()).hexdigest() == sha


def test_bad_input_is_refused_before_compiling_and_changes_nothing(tmp_path):
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "results.jsonl").write_text('{"cell": "x"}\n')
    sha = hashlib.sha256((wd / "results.jsonl").read_bytes()).hexdigest()
    for extra, message in [(["--cells=99"], "has cells 0..1"),
                           (["--config.num_seeds=0"], "num_seeds must be >= 1"),
                           (["--config.window_fraction=0.0"], "window_fraction must be in"),
                           (["--config.num_seed=2"], "Did you mean --config.num_seeds")]:
        p = _run([*TINY, f"--workdir={wd}", *extra], tmp_path, check=False)
        assert p.returncode != 0 and message in p.stdout + p.stderr, (extra, p.stderr[-1500:])
    assert hashlib.sha256((wd / "results.jsonl").read_bytes()).hexdigest() == sha
    assert sorted(os.listdir(wd)) == ["results.jsonl"]
