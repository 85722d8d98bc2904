"""Work directories: a lock, a fingerprint, nothing overwritten, no poisoning by a failed run."""

import json
import os
import subprocess
import sys

import pytest

from lfx.experiment import CellLog, Workdir, WorkdirError, WorkdirLockedError


def test_a_second_run_on_a_held_workdir_is_refused_naming_the_holder(tmp_path):
    with Workdir.open(str(tmp_path), {"a": 1}):
        with pytest.raises(WorkdirLockedError, match=f"pid.*{os.getpid()}"):
            Workdir.open(str(tmp_path), {"a": 1})
        code = ("from lfx.experiment import Workdir\n"
                f"Workdir.open({str(tmp_path)!r}, {{'a': 1}})")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode != 0 and "in use by another run" in out.stderr
    Workdir.open(str(tmp_path), {"a": 1}).close()  # released


def test_a_failed_first_run_does_not_poison_the_workdir(tmp_path):
    Workdir.open(str(tmp_path), {"chunk_size": 0}).close()  # wrote run.json, then failed
    with Workdir.open(str(tmp_path), {"chunk_size": 10}) as wd:
        assert json.load(open(wd.file("run.json"))) == {"chunk_size": 10}


def _with_checkpoint(path):
    os.makedirs(path / "checkpoints" / "4")


def test_another_configuration_is_refused_and_nothing_changes(tmp_path):
    Workdir.open(str(tmp_path), {"lr": 1, "seeds": 2}).close()
    _with_checkpoint(tmp_path)
    before = open(tmp_path / "run.json").read()
    with pytest.raises(WorkdirError, match="differs in lr"):
        Workdir.open(str(tmp_path), {"lr": 2, "seeds": 2}, resume=True)
    with pytest.raises(WorkdirError, match="--resume"):
        Workdir.open(str(tmp_path), {"lr": 1, "seeds": 2})
    assert open(tmp_path / "run.json").read() == before
    with Workdir.open(str(tmp_path), {"lr": 1, "seeds": 2}, resume=True) as wd:
        assert wd.resuming


def test_results_without_checkpoints_are_never_overwritten(tmp_path):
    Workdir.open(str(tmp_path), {"a": 1}).close()
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(WorkdirError, match="summary.json"):
        Workdir.open(str(tmp_path), {"a": 1})
    with pytest.raises(WorkdirError, match="differs in a"):
        Workdir.open(str(tmp_path), {"a": 2})
    assert (tmp_path / "summary.json").read_text() == "{}"


def test_a_run_json_that_is_not_json_is_named(tmp_path):
    _with_checkpoint(tmp_path)
    (tmp_path / "run.json").write_text("{garbage")
    with pytest.raises(WorkdirError, match="run.json is not valid JSON"):
        Workdir.open(str(tmp_path), {"a": 1}, resume=True)


def test_default_workdirs_are_fresh_and_timestamped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = Workdir.open(None, {"a": 1}, name="ppo_brax/hopper")
    b = Workdir.open(None, {"a": 1}, name="ppo_brax/hopper")
    assert a.path != b.path and os.path.basename(a.path).startswith("ppo_brax_hopper_")
    a.close()
    b.close()


def test_cell_log_resumes_only_the_missing_cells(tmp_path):
    calls = []

    def cell(i):
        def fn():
            calls.append(i)
            return {"value": i * i}
        return fn

    with Workdir.open(str(tmp_path), {"grid": 3}, has_checkpoints=CellLog.has_cells) as wd:
        log = CellLog(wd)
        log.run([(f"c{i}", cell(i)) for i in range(2)], progress=False)  # "killed" after 2 of 3
    with open(tmp_path / "results.jsonl", "a") as f:
        f.write("garbage\n")
    with pytest.raises(WorkdirError, match="--resume"):
        Workdir.open(str(tmp_path), {"grid": 3}, has_checkpoints=CellLog.has_cells)
    with Workdir.open(str(tmp_path), {"grid": 3}, resume=True,
                      has_checkpoints=CellLog.has_cells) as wd:
        rows = CellLog(wd).run([(f"c{i}", cell(i)) for i in range(3)], progress=False)
    assert calls == [0, 1, 2]
    assert [r["value"] for r in rows] == [0, 1, 4]
    assert len(open(tmp_path / "results.jsonl").read().splitlines()) == 3
