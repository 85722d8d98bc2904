"""Metric writers: JSONL and CSV on disk (optionally TensorBoard), one record per update.

A record holds, for each metric, the mean and standard deviation over every run of a vmapped batch
(seeds x hyperparameter settings), so the files stay small however many runs are trained together.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any

import numpy as np


def summarize(metrics: dict[str, np.ndarray], batch_ndim: int) -> list[dict[str, float]]:
    """Turns per-run arrays [*batch, T] into T records of mean/std over the batch axes."""
    records = []
    first = next(iter(metrics.values()))
    axes = tuple(range(batch_ndim))
    for t in range(first.shape[batch_ndim]):
        rec: dict[str, float] = {}
        for k, v in metrics.items():
            x = np.asarray(v)[(slice(None),) * batch_ndim + (t,)].astype(np.float64)
            rec[k] = float(np.mean(x, axis=axes)) if batch_ndim else float(x)
            if batch_ndim:
                rec[k + "/std"] = float(np.std(x, axis=axes))
        records.append(rec)
    return records


class MetricWriter:
    """Appends records to `<workdir>/metrics.jsonl` and `metrics.csv` (and TensorBoard if asked)."""

    def __init__(self, workdir: str, tensorboard: bool = False):
        os.makedirs(workdir, exist_ok=True)
        self.jsonl_path = os.path.join(workdir, "metrics.jsonl")
        self.csv_path = os.path.join(workdir, "metrics.csv")
        self._tb = None
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter  # noqa: PLC0415
            except ImportError as err:
                raise ImportError("--tensorboard needs tensorboardX: pip install tensorboardX") from err
            self._tb = SummaryWriter(os.path.join(workdir, "tb"))

    def truncate(self, step: int) -> None:
        """Drops records after `step` (used on resume: they are recomputed from the checkpoint)."""
        if not os.path.exists(self.jsonl_path):
            return
        with open(self.jsonl_path) as f:
            kept = [r for r in map(json.loads, f) if r["step"] <= step]
        with open(self.jsonl_path, "w") as f:
            for r in kept:
                f.write(json.dumps(r) + "\n")
        self._rewrite_csv(kept)

    def _rewrite_csv(self, records: list[dict[str, Any]]) -> None:
        if not records:
            if os.path.exists(self.csv_path):
                os.remove(self.csv_path)
            return
        with open(self.csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(records[0]))
            w.writeheader()
            w.writerows(records)

    def write(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        new_csv = not os.path.exists(self.csv_path)
        with open(self.jsonl_path, "a") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
        with open(self.csv_path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(records[0]))
            if new_csv:
                w.writeheader()
            w.writerows(records)
        if self._tb is not None:
            for r in records:
                for k, v in r.items():
                    if k != "step":
                        self._tb.add_scalar(k, v, r["step"])
            self._tb.flush()
