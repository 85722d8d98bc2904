"""Checkpoints of a run's state with orbax, guarded by a fingerprint of the run's configuration.

A work directory holds `checkpoints/<step>/` (orbax) and `run.json` (the configuration the
checkpoints belong to). `Checkpointer.open(workdir, run_config, resume=...)`:

* a fresh directory: writes `run.json`;
* checkpoints made by the SAME configuration: resumes from the newest when `resume=True`, otherwise
  refuses (nothing is overwritten unless the caller asks to resume);
* checkpoints made by a DIFFERENT configuration: always refuses, naming the keys that differ.

Typed PRNG keys are stored as their raw key data and re-wrapped on restore.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp


class CheckpointMismatchError(ValueError):
    """The work directory holds checkpoints of another configuration."""


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_storable(tree: Any) -> Any:
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _from_storable(stored: Any, like: Any) -> Any:
    return jax.tree.map(
        lambda s, t: jax.random.wrap_key_data(s, impl=jax.random.key_impl(t)) if _is_key(t) else s,
        stored,
        like,
    )


def _jsonable(cfg: Any) -> Any:
    return json.loads(json.dumps(cfg, sort_keys=True, default=str))


class Checkpointer:
    """Saves and restores pytrees of arrays under `<workdir>/checkpoints/<step>`."""

    def __init__(self, workdir: str, run_config: dict[str, Any]):
        self.workdir = os.path.abspath(workdir)
        self.dir = os.path.join(self.workdir, "checkpoints")
        self.run_config = _jsonable(run_config)
        self._ckpt = ocp.StandardCheckpointer()

    @classmethod
    def open(cls, workdir: str, run_config: dict[str, Any], *, resume: bool) -> "Checkpointer":
        """Opens a work directory for a run, refusing anything that could lose or mix results."""
        ckpt = cls(workdir, run_config)
        meta_path = os.path.join(ckpt.workdir, "run.json")
        steps = ckpt.steps()
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                saved = json.load(f)
            if saved != ckpt.run_config:
                diff = sorted(
                    k
                    for k in set(saved) | set(ckpt.run_config)
                    if saved.get(k) != ckpt.run_config.get(k)
                )
                raise CheckpointMismatchError(
                    f"{ckpt.workdir} holds a run with a different configuration (differs in "
                    f"{diff}); nothing was changed. Use another --workdir, or the original "
                    f"configuration to resume."
                )
            if steps and not resume:
                raise CheckpointMismatchError(
                    f"{ckpt.workdir} already holds checkpoints up to update {steps[-1]}; pass "
                    f"--resume to continue that run, or choose another --workdir."
                )
        else:
            os.makedirs(ckpt.workdir, exist_ok=True)
            with open(meta_path, "w") as f:
                json.dump(ckpt.run_config, f, indent=1, sort_keys=True)
        return ckpt

    def steps(self) -> list[int]:
        if not os.path.isdir(self.dir):
            return []
        return sorted(int(d) for d in os.listdir(self.dir) if d.isdigit())

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, tree: Any, keep: int = 2) -> None:
        """Writes `tree` as checkpoint `step` (atomically), keeping the newest `keep`."""
        path = os.path.join(self.dir, str(step))
        if os.path.exists(path):
            shutil.rmtree(path)
        self._ckpt.save(path, _to_storable(tree))
        self._ckpt.wait_until_finished()
        for old in self.steps()[:-keep]:
            shutil.rmtree(os.path.join(self.dir, str(old)))

    def restore(self, step: int, like: Any) -> Any:
        """Restores checkpoint `step` into the structure, shapes and dtypes of `like`."""
        storable = _to_storable(like)
        target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), storable)
        stored = self._ckpt.restore(os.path.join(self.dir, str(step)), target)
        return _from_storable(stored, like)
