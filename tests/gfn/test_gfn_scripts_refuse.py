"""experiments/gfn_ocgfn.py and gfn_for_*.py refuse bad input before opening any file."""

import hashlib
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CASES = [
    ("gfn_ocgfn.py", "--config.seeds=0", "config.seeds must be >= 1"),
    ("gfn_ocgfn.py", "--config.hparams.epsilon=-0.5", "set config.hparams.epsilon"),
    ("gfn_ocgfn.py", "--config.env=grid", "unknown 'grid'"),
    ("gfn_for_game24.py", "--config.methods=('tb','foo')", "unknown ['foo']"),
    ("gfn_for_blocksworld.py", "--config.lr=-1", "set config.lr"),
    ("gfn_for_blocksworld.py", "--config.slack=5", "exceeds max_limit"),
]


@pytest.mark.parametrize("script, bad, message", CASES)
def test_bad_input_is_refused_and_the_results_are_untouched(tmp_path, script, bad, message):
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "summary.json").write_text('{"an": "earlier result"}')
    digest = hashlib.sha256((wd / "summary.json").read_bytes()).hexdigest()
    p = subprocess.run([sys.executable, os.path.join(ROOT, "experiments", script), bad,
                        f"--workdir={wd}"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300, check=False, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert p.returncode != 0
    assert message in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert sorted(os.listdir(wd)) == ["summary.json"]
    assert hashlib.sha256((wd / "summary.json").read_bytes()).hexdigest() == digest
