"""experiments/qd_sparse.py on the shared spine: checks before compiling, exact resume, no overwrite.

The script runs in a subprocess from a temporary directory (never the repository root).
"""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from lfx.experiment import ConfigError, cli
from lfx.qd import comparison as qdc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "experiments", "qd_sparse.py")
CONFIG = os.path.join(ROOT, "experiments", "configs", "qd_sparse.py")
# 6 generations for both algorithms (random: 48 / 8; NS: 4 + 6 x 8 >= 48), chunks of 2
TINY = ["--config.algorithms=('random', 'ns')", "--config.budget=48", "--config.population_size=4",
        "--config.archive_capacity=30", "--config.archive_add=2", "--config.k=3",
        "--config.hidden=(3,)", "--config.image_size=0", "--config.env_kwargs.max_steps_in_episode=6",
        "--config.chunk_size=2", "--config.checkpoint_every=2", "--noprogress"]


def _run(cwd, *args, timeout=600):
    return subprocess.run([sys.executable, SCRIPT, f"--config={CONFIG}:smoke", *TINY, *args],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _results(workdir):
    with open(os.path.join(workdir, "results.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return sorted(({k: v for k, v in r.items() if k != "wall_s"} for r in rows),
                  key=lambda r: r["cell"])


def _smoke(**overrides):
    c = cli.load_config(f"{CONFIG}:smoke")
    for path, value in overrides.items():
        target = c
        *parents, leaf = path.split(".")
        for p in parents:
            target = target[p]
        target[leaf] = value
    return c


@pytest.mark.parametrize("overrides,match", [
    ({"budget": 0}, "budget"),
    ({"budget": 20}, "must exceed the 20 evaluations"),  # NS: nothing left after the population
    ({"population_size": 0}, "population_size"),
    ({"hparams.sigma": -0.1}, "sigma"),
    ({"hparams.es_sigma": -1.0}, "es_sigma"),
    ({"hparams.es_lr": 0.0}, "es_lr"),
    ({"num_seeds": 0}, "num_seeds"),
    ({"algorithms": ()}, "algorithms is empty"),
    ({"algorithms": ("ns", "nsga")}, "unknown algorithm 'nsga'"),
    ({"env": "Curlingg-sparse"}, "Curlingg-sparse"),
    ({"serene_variant": "paper"}, "serene_variant must be one of"),
    ({"archive_strategy": "best"}, "archive_strategy must be"),
])
def test_bad_inputs_are_refused_before_compiling_naming_what_to_change(overrides, match):
    with pytest.raises(ConfigError, match=match):
        qdc.build(_smoke(**overrides))


def test_sweep_refuses_unknown_fields_and_bad_values():
    with pytest.raises(ConfigError, match="not a traced HParams field"):
        qdc.build(_smoke(), "lr=0.01,0.05")
    with pytest.raises(ConfigError, match="es_sigma"):
        qdc.build(_smoke(), "es_sigma=0.1,-0.3")
    assert len(qdc.build(_smoke(), "es_sigma=0.1,0.3;es_lr=0.01,0.05").settings) == 4


def test_help_lists_the_config_fields_from_any_directory(tmp_path):
    out = subprocess.run([sys.executable, SCRIPT, "--help"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, check=False)
    for field in ("--config.budget", "--config.algorithms", "--config.hparams.sigma",
                  "--config.num_seeds"):
        assert field in out.stdout


def test_killed_then_resumed_equals_uninterrupted_and_nothing_is_overwritten(tmp_path):
    full, killed = str(tmp_path / "full"), str(tmp_path / "killed")
    a = _run(tmp_path, f"--workdir={full}")
    assert a.returncode == 0, a.stderr[-3000:]
    b = _run(tmp_path, f"--workdir={killed}", "--stop_after=4")
    assert b.returncode == 0 and "Stopped random after 4" in b.stdout, b.stderr[-3000:]
    assert not os.path.exists(os.path.join(killed, "results.jsonl"))
    c = _run(tmp_path, f"--workdir={killed}", "--resume")
    assert c.returncode == 0 and "Resumed from update 4 of 6" in c.stdout, c.stderr[-3000:]
    assert _results(full) == _results(killed) and len(_results(full)) == 4  # 2 algorithms x 2 seeds
    for algo in ("random", "ns"):
        with open(os.path.join(full, algo, "metrics.jsonl")) as f1, \
                open(os.path.join(killed, algo, "metrics.jsonl")) as f2:
            assert f1.read() == f2.read()
    # A rerun, an unknown field and an invalid value: refused, the results untouched.
    digest = _digest(os.path.join(full, "results.jsonl"))
    for args, message in [((), "--resume"), (("--config.budgett=10",), "budget"),
                          (("--config.budget=0",), "budget")]:
        r = _run(tmp_path, f"--workdir={full}", *args)
        assert r.returncode != 0 and message in r.stderr, r.stderr[-2000:]
        assert _digest(os.path.join(full, "results.jsonl")) == digest


@pytest.mark.parametrize("variant", ["curling", "arm", "maze", "smoke", "es_sweep", "ant", "curling_v1",
                                     "arm_v1", "maze_v1"])
def test_every_variant_builds(variant):
    if variant == "ant":
        pytest.importorskip("brax")
    comp = qdc.build(cli.load_config(f"{CONFIG}:{variant}"))
    assert set(comp.algorithms) == set(comp.config.algorithms)
    assert all(r.num_updates > 0 for r in comp.algorithms.values() if hasattr(r, "num_updates"))
