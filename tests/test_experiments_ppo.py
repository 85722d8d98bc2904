"""experiments/ppo.py end to end (tiny run) and its rejection of bad flags before compiling."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "experiments", "ppo.py")


def _run(*args, timeout=600):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, SCRIPT, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_tiny_sweep_run_writes_metrics_summary_and_plot(tmp_path):
    out = _run(
        f"--workdir={tmp_path}", "--num_seeds=2", "--config.total_timesteps=2048",
        "--config.chunk_size=2", "--sweep=lr=1e-4,1e-3", "--noprogress",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.load(open(tmp_path / "summary.json"))
    assert [r["setting"]["lr"] for r in summary["runs"]] == [1e-4, 1e-3]
    assert all(len(r["final_returns"]) == 2 for r in summary["runs"])
    assert os.path.getsize(tmp_path / "learning_curve.png") > 1000
    lines = open(tmp_path / "metrics.jsonl").read().splitlines()
    assert len(lines) == 2048 // 512
    assert "final episodic return" in out.stdout


def test_bad_flags_are_rejected_with_a_message(tmp_path):
    out = _run(f"--workdir={tmp_path}", "--config.num_minibatches=3", timeout=120)
    assert out.returncode != 0
    assert "does not divide the batch" in out.stderr
    out = _run(f"--workdir={tmp_path}", "--sweep=learning_rate=1e-3", timeout=120)
    assert "not a traced HParams field" in out.stderr
    out = _run(f"--workdir={tmp_path}", "--config.hparams.lr=-1.0", timeout=120)
    assert "HParams.lr" in out.stderr
    assert not os.path.exists(tmp_path / "checkpoints")
