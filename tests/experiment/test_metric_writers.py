"""Optional metric writers keep settings apart too: TensorBoard events and an offline W&B run."""

import glob
import os
import struct

import numpy as np
import pytest

from lfx.experiment import MetricWriter


def _metrics():
    lr = np.broadcast_to(np.array([1e-4, 1e-3])[:, None, None], (2, 3, 4)).astype(np.float32)
    return {"train/lr": lr, "train/loss": np.arange(24, dtype=np.float32).reshape(2, 3, 4)}


def _tb_scalars(path):
    """(tag, step, value) from a TensorBoard event file (TFRecord framing, Event protos)."""
    from tensorboardX.proto import event_pb2

    out = []
    with open(path, "rb") as f:
        while header := f.read(12):
            (length,) = struct.unpack("<Q", header[:8])
            data = f.read(length)
            f.read(4)
            event = event_pb2.Event.FromString(data)
            for v in event.summary.value:
                out.append((v.tag, event.step, v.simple_value))
    return out


def test_tensorboard_gets_one_series_per_setting(tmp_path):
    pytest.importorskip("tensorboardX")
    w = MetricWriter(str(tmp_path), batch_names=("setting", "seed"), tensorboard=True)
    w.write(_metrics(), first_step=0)
    w.close()
    (events,) = glob.glob(str(tmp_path / "tb" / "events.out.tfevents.*"))
    scalars = _tb_scalars(events)
    lr0 = [v for t, s, v in scalars if t == "train/lr/setting_0"]
    lr1 = [v for t, s, v in scalars if t == "train/lr/setting_1"]
    np.testing.assert_allclose(lr0, [1e-4] * 4, rtol=1e-6)
    np.testing.assert_allclose(lr1, [1e-3] * 4, rtol=1e-6)
    loss1 = {s: v for t, s, v in scalars if t == "train/loss/setting_1"}
    np.testing.assert_allclose([loss1[s] for s in (1, 2, 3, 4)], [16.0, 17.0, 18.0, 19.0])  # seed mean


def test_wandb_offline_run_records_each_setting(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    w = MetricWriter(str(tmp_path), batch_names=("setting", "seed"), wandb="offline")
    w.write(_metrics(), first_step=0)
    w.close()
    (run_file,) = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "*.wandb"))
    blob = open(run_file, "rb").read()
    assert b"train/lr/setting_0" in blob and b"train/lr/setting_1" in blob
    assert os.path.getsize(tmp_path / "metrics.jsonl") > 0
