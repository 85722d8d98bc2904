"""Metric files that keep what a sweep is for: one row per (setting, seed, update).

A vmapped run produces metrics `[*batch, T]` (for a sweep: `[num_settings, num_seeds, T]`). The
writers never average over the batch: `metrics.jsonl` and `metrics.csv` hold one row per batch index
and update, `{"step": t, "setting": h, "seed": s, "train/lr": ..., ...}`, so each setting's and each
seed's curve can be read back separately (`read_rows`, `curves`). TensorBoard (extra `tensorboard`)
gets one series per setting (`<metric>/setting_<h>`, the mean over seeds); Weights & Biases (extra
`wandb`, offline by default) one logged dict per update with the same per-setting keys. Of several
processes only the primary one writes (`primary=Workdir.primary`; by default jax process 0); the
others' writers do nothing.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from typing import Any

import numpy as np


def rows(
    metrics: dict[str, np.ndarray], batch_names: tuple[str, ...], first_step: int,
    steps_per_update: int = 0,
) -> list[dict[str, Any]]:
    """Metrics `[*batch, T]` -> rows ordered by update, then batch index (C order).

    Args:
      metrics: name -> array whose leading `len(batch_names)` axes are the batch.
      batch_names: names of the batch axes, e.g. ("setting", "seed").
      first_step: updates done before this chunk (rows get `step = first_step + t + 1`).
      steps_per_update: if > 0, rows also get `env_steps = step * steps_per_update`.
    """
    if not metrics:
        return []
    arrays = {k: np.asarray(v) for k, v in metrics.items()}
    first = next(iter(arrays.values()))
    nb = len(batch_names)
    batch_shape, num_t = first.shape[:nb], first.shape[nb]
    out = []
    for t in range(num_t):
        step = first_step + t + 1
        for idx in np.ndindex(*batch_shape):
            r: dict[str, Any] = {"step": step}
            if steps_per_update:
                r["env_steps"] = step * steps_per_update
            r.update({name: int(i) for name, i in zip(batch_names, idx)})
            for k, v in arrays.items():
                x = v[idx + (t,)]
                r[k] = x.item() if np.ndim(x) == 0 else np.asarray(x).tolist()
            out.append(r)
    return out


class MetricWriter:
    """Writes rows to `<dir>/metrics.jsonl` and `metrics.csv`, optionally TensorBoard / W&B."""

    def __init__(self, directory: str, *, batch_names: tuple[str, ...] = (),
                 steps_per_update: int = 0, tensorboard: bool = False, wandb: str = "",
                 primary: bool | None = None):
        self.jsonl_path = os.path.join(directory, "metrics.jsonl")
        self.csv_path = os.path.join(directory, "metrics.csv")
        self.batch_names = tuple(batch_names)
        self.steps_per_update = steps_per_update
        if primary is None:
            import jax  # noqa: PLC0415 (only here: the rest of this module is NumPy)

            primary = jax.process_index() == 0
        self.primary = primary
        self._tb = None
        self._wandb = None
        if not primary:
            return
        os.makedirs(directory, exist_ok=True)
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter  # noqa: PLC0415
            except ImportError as err:
                raise ImportError(
                    "--tensorboard needs tensorboardX: pip install 'lfx-learn[tensorboard]'"
                ) from err
            self._tb = SummaryWriter(os.path.join(directory, "tb"))
        if wandb:
            try:
                import wandb as wandb_lib  # noqa: PLC0415
            except ImportError as err:
                raise ImportError("--wandb needs wandb: pip install 'lfx-learn[wandb]'") from err
            self._wandb = wandb_lib.init(
                mode=wandb, dir=directory, project="lfx", name=os.path.basename(directory),
                reinit=True,
            )

    def write(self, metrics: dict[str, np.ndarray], first_step: int) -> None:
        """Appends the rows of one chunk `[*batch, n]` whose first update is `first_step + 1`."""
        if not self.primary:
            return
        new = rows(metrics, self.batch_names, first_step, self.steps_per_update)
        if not new:
            return
        self._append(new)
        self._log_series(metrics, first_step)

    def rewrite(self, history: dict[str, np.ndarray]) -> None:
        """Replaces the files by the rows of `history` (on resume: exactly the restored updates)."""
        if not self.primary:
            return
        for path in (self.jsonl_path, self.csv_path):
            if os.path.exists(path):
                os.remove(path)
        self._append(rows(history, self.batch_names, 0, self.steps_per_update))

    def _append(self, new: list[dict[str, Any]]) -> None:
        if not new:
            return
        new_csv = not os.path.exists(self.csv_path)
        with open(self.jsonl_path, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in new)
        with open(self.csv_path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(new[0]))
            if new_csv:
                w.writeheader()
            w.writerows(new)

    def _log_series(self, metrics: dict[str, np.ndarray], first_step: int) -> None:
        if self._tb is None and self._wandb is None:
            return
        nb = len(self.batch_names)
        for t in range(next(iter(metrics.values())).shape[nb]):
            step = first_step + t + 1
            logged = {}
            for k, v in metrics.items():
                x = np.asarray(v, np.float64)[(Ellipsis, t)]
                if nb >= 2:  # [settings, seeds, ...]: one series per setting, mean over seeds
                    per = x.reshape(x.shape[0], -1).mean(1)
                    logged.update({f"{k}/setting_{h}": float(m) for h, m in enumerate(per)})
                else:
                    logged[k] = float(np.mean(x))
            if self._tb is not None:
                for k, v in logged.items():
                    self._tb.add_scalar(k, v, step)
            if self._wandb is not None:
                self._wandb.log(logged, step=step)
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def read_rows(path: str) -> list[dict[str, Any]]:
    """Rows of a metrics.jsonl, skipping (and counting in a warning) lines that are not JSON."""
    out, bad = [], 0
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                bad += 1
    if bad:
        print(f"warning: {path}: skipped {bad} line(s) that are not JSON.", flush=True)
    return out


def curves(records: Iterable[dict[str, Any]], metric: str, by: str = "setting") -> dict[int, np.ndarray]:
    """`by` value -> [num_other, T] curves of `metric` (e.g. each setting's seeds x updates)."""
    groups: dict[int, dict[tuple, list[tuple[int, float]]]] = {}
    for r in records:
        if metric not in r:
            continue
        rest = tuple((k, v) for k, v in sorted(r.items()) if k in ("setting", "seed") and k != by)
        groups.setdefault(r.get(by, 0), {}).setdefault(rest, []).append((r["step"], r[metric]))
    return {
        g: np.stack([np.array([v for _, v in sorted(series)]) for _, series in sorted(runs.items())])
        for g, runs in sorted(groups.items())
    }
