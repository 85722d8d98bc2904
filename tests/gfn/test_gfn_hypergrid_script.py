"""experiments/gfn_hypergrid.py end to end: killed + --resume == uninterrupted, bad input refused."""

import hashlib
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "experiments", "gfn_hypergrid.py")
TINY = ["--config.dim=2", "--config.height=4", "--config.batch_size=4", "--config.num_iterations=8",
        "--config.eval_every=4", "--config.hidden=(16,)", "--config.chunk_size=2",
        "--config.checkpoint_every=4", "--config.losses=tb,db", "--config.num_seeds=2",
        "--noprogress"]


def _run(cwd, *args, check=True):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    p = subprocess.run([sys.executable, SCRIPT, *TINY, *args], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=600, check=False)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}:\n{p.stdout}\n{p.stderr[-3000:]}")
    return p


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_killed_then_resumed_equals_uninterrupted_and_rerun_is_refused(tmp_path):
    _run(tmp_path, "--workdir=whole")
    # Killed during the first loss, after the checkpoint at iteration 4 and two more iterations.
    out = _run(tmp_path, "--workdir=killed", "--stop_after=6").stdout
    assert "Stopped during tb" in out and not (tmp_path / "killed" / "summary.json").exists()
    _run(tmp_path, "--workdir=killed", "--resume")
    for name in ("tb/metrics.jsonl", "db/metrics.jsonl", "tb/metrics.csv"):
        assert _digest(tmp_path / "whole" / name) == _digest(tmp_path / "killed" / name), name
    runs = [json.loads((tmp_path / d / "summary.json").read_text())["runs"] for d in ("whole", "killed")]
    assert runs[0] == runs[1] and [r["loss"] for r in runs[0]] == ["tb", "db"]
    # A second run on the finished folder, without --resume, is refused and changes nothing.
    before = _digest(tmp_path / "whole" / "summary.json")
    p = _run(tmp_path, "--workdir=whole", check=False)
    assert p.returncode != 0 and "--resume" in p.stderr
    assert _digest(tmp_path / "whole" / "summary.json") == before


@pytest.mark.parametrize("bad, message", [
    ("--config.losses=tb,foo", "unknown 'foo'"),
    ("--config.nope=1", "unknown config field --config.nope"),  # refused while parsing the flags
    ("--config.hparams.lr=nan", "config.hparams.lr must be finite"),
    ("--config.hparams.epsilon=1.5", "set config.hparams.epsilon"),
    ("--config.num_seeds=0", "config.num_seeds must be positive"),
])
def test_bad_input_is_refused_before_anything_is_written(tmp_path, bad, message):
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "summary.json").write_text('{"runs": "an earlier result"}')
    before = sorted(os.listdir(wd)), _digest(wd / "summary.json")
    p = _run(tmp_path, f"--workdir={wd}", bad, check=False)
    assert p.returncode != 0
    assert message in p.stderr, p.stderr[-2000:]
    assert "Traceback" not in p.stderr or "nope" in bad
    assert (sorted(os.listdir(wd)), _digest(wd / "summary.json")) == before  # no file opened
