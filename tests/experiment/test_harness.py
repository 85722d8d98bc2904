"""The shared harness: exact resume, per-setting metric rows, corrupted checkpoints, NaN stops."""

import json
import os

import jax
import numpy as np
import pytest
import spine_toy as toy

from lfx.experiment import (
    CheckpointError,
    MetricWriter,
    NonFiniteMetricError,
    Workdir,
    read_rows,
    recipe_functions,
    run_chunked,
    stack_hparams,
)
from lfx.experiment.metrics import curves

SETTINGS = [toy.HParams(lr=0.1), toy.HParams(lr=0.5)]
RUN_CONFIG = {"toy": 1}


def _run(path, *, resume=False, stop_after=None, settings=SETTINGS, checkpoint_every=4,
         run_config=RUN_CONFIG):
    keys = jax.random.split(jax.random.key(0), 3)
    init, run = recipe_functions(toy.RECIPE, keys, stack_hparams(settings))
    with Workdir.open(str(path), run_config, resume=resume) as wd:
        writer = MetricWriter(wd.path, batch_names=("setting", "seed"))
        return run_chunked(
            init, run, total_updates=toy.RECIPE.num_updates, chunk_size=2, workdir=wd,
            checkpoint_every=checkpoint_every, writer=writer, progress=False,
            stop_after=stop_after,
        )


def _assert_same(a, b):
    for x, y in zip(jax.tree.leaves(jax.tree.map(np.asarray, jax.random.key_data(a["key"]))),
                    jax.tree.leaves(jax.random.key_data(b["key"]))):
        np.testing.assert_array_equal(x, np.asarray(y))
    np.testing.assert_array_equal(np.asarray(a["x"]), np.asarray(b["x"]))


def test_killed_then_resumed_run_equals_an_uninterrupted_one(tmp_path):
    full_state, full_metrics = _run(tmp_path / "full")
    _run(tmp_path / "killed", stop_after=8)
    state, metrics = _run(tmp_path / "killed", resume=True)
    _assert_same(full_state, state)
    for k in full_metrics:
        np.testing.assert_array_equal(full_metrics[k], metrics[k])
    rows = read_rows(str(tmp_path / "killed" / "metrics.jsonl"))
    assert len(rows) == 2 * 3 * toy.RECIPE.num_updates
    full_rows = read_rows(str(tmp_path / "full" / "metrics.jsonl"))
    assert rows == full_rows


def test_a_sweep_keeps_each_settings_curve_apart(tmp_path):
    _, metrics = _run(tmp_path)
    assert metrics["train/lr"].shape == (2, 3, toy.RECIPE.num_updates)
    rows = read_rows(str(tmp_path / "metrics.jsonl"))
    lr = curves(rows, "train/lr", by="setting")
    assert sorted(lr) == [0, 1]
    np.testing.assert_allclose(lr[0], 0.1, rtol=1e-6)
    np.testing.assert_allclose(lr[1], 0.5, rtol=1e-6)
    assert lr[0].shape == (3, toy.RECIPE.num_updates)  # seeds x updates, not averaged
    loss = curves(rows, "train/loss", by="setting")
    assert not np.allclose(loss[0][0], loss[0][1])  # seeds stay apart too


def _latest_ckpt(path):
    steps = sorted(int(d) for d in os.listdir(path / "checkpoints") if d.isdigit())
    return path / "checkpoints" / str(steps[-1]), steps


def _array_files(step_dir):
    return [os.path.join(r, f) for r, _, fs in os.walk(step_dir / "state") for f in fs
            if os.path.getsize(os.path.join(r, f)) > 0 and "ocdbt" in r or "/d/" in r + "/"]


@pytest.mark.parametrize("damage", ["truncate_arrays", "remove_metadata"])
def test_a_corrupted_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, damage, capsys):
    full_state, full_metrics = _run(tmp_path / "full")
    _run(tmp_path / "killed", stop_after=8)
    latest, steps = _latest_ckpt(tmp_path / "killed")
    assert steps == [4, 8]
    if damage == "truncate_arrays":
        for root, _, files in os.walk(latest / "state"):
            for f in files:
                if root.endswith("/d") or "/d/" in root:
                    with open(os.path.join(root, f), "r+b") as fh:
                        fh.truncate(max(0, os.path.getsize(os.path.join(root, f)) // 3))
    else:
        os.remove(latest / "state" / "_METADATA")
    state, metrics = _run(tmp_path / "killed", resume=True)
    assert "unusable" in capsys.readouterr().out
    _assert_same(full_state, state)
    np.testing.assert_array_equal(full_metrics["train/loss"], metrics["train/loss"])


def test_every_checkpoint_unreadable_stops_naming_the_files(tmp_path):
    _run(tmp_path, stop_after=8)
    for step in (4, 8):
        os.remove(tmp_path / "checkpoints" / str(step) / "state" / "_METADATA")
    with pytest.raises(CheckpointError, match="checkpoints/8"):
        _run(tmp_path, resume=True)


def test_garbage_in_the_metric_file_is_dropped_on_resume(tmp_path):
    _run(tmp_path, stop_after=8)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write("{not json\n")
    _run(tmp_path, resume=True)
    with open(tmp_path / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f]  # every line parses
    assert [r["step"] for r in rows[::6]] == list(range(1, toy.RECIPE.num_updates + 1))


def test_a_nan_after_a_checkpoint_stops_the_run_and_keeps_that_checkpoint(tmp_path):
    bad = [toy.HParams(lr=0.1), toy.HParams(lr=1e6, noise=1.0)]  # |1 - lr| >> 1: inf by update ~7
    with pytest.raises(NonFiniteMetricError, match=r"train/loss.*update \d+ \(setting 1, seed"):
        _run(tmp_path, settings=bad, checkpoint_every=2)
    _, steps = _latest_ckpt(tmp_path)
    assert steps  # the last good checkpoint is still there
    rows = read_rows(str(tmp_path / "metrics.jsonl"))
    assert max(r["step"] for r in rows) <= max(steps) + 2
    assert all(np.isfinite(r["train/loss"]) for r in rows)


def test_a_run_resumed_after_its_end_recomputes_nothing(tmp_path):
    _, m1 = _run(tmp_path)
    before = os.path.getmtime(tmp_path / "checkpoints")
    _, m2 = _run(tmp_path, resume=True)
    np.testing.assert_array_equal(m1["train/loss"], m2["train/loss"])
    assert os.path.getmtime(tmp_path / "checkpoints") == before
