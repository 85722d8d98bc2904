"""Checkpoints of a run's state (orbax `CheckpointManager`), checked before anything compiles.

A checkpoint is `<workdir>/checkpoints/<step>/` holding three items: `state` (the run's pytree,
flattened to `leaf_00000, leaf_00001, ...` in `jax.tree` order), `history` (the metrics of every
update so far, `[*batch, step]` each) and `meta` (JSON: step, leaf count, metric names). The manager
keeps the newest `keep` checkpoints; orbax writes each one atomically. Unusable checkpoints are moved
to `checkpoints.unusable/`, never deleted.

`restore_latest(like)` restores WITHOUT a target first (plain NumPy from the files), so a truncated
array file, a missing `_METADATA` or a mismatched structure is found before the caller compiles
anything; a bad checkpoint is reported and the previous one is tried. `like` is usually
`jax.eval_shape(init)`: the structure, shapes and dtypes of the state, at no compile cost. Typed PRNG
keys are stored as their key data and re-wrapped with the key type of `like`.

Several processes (multi-host): every process calls `save` and `restore_latest` alike. `save`
gathers the whole state on every process (`parallel.allgather`, a collective) and orbax writes those
NumPy arrays from process 0 only, with its own barriers; `restore_latest` reads the whole state on
every process from the (shared) folder, for the caller to place on devices again.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from lfx import parallel

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """No usable checkpoint; the message names the files that failed."""


def _is_key(x: Any) -> bool:
    return jnp.issubdtype(getattr(x, "dtype", np.float32), jax.dtypes.prng_key)


def _flatten(tree: Any) -> dict[str, np.ndarray]:
    # allgather: np.asarray of each leaf (typed keys as key data), whole even when split over hosts.
    leaves = parallel.allgather(jax.tree.leaves(tree))
    return {f"leaf_{i:05d}": x for i, x in enumerate(leaves)}


def _unflatten(flat: dict[str, np.ndarray], like: Any, where: str) -> Any:
    like_leaves, treedef = jax.tree.flatten(like)
    if len(flat) != len(like_leaves):
        raise CheckpointError(
            f"{where} holds {len(flat)} arrays where this run's state has {len(like_leaves)}."
        )
    out = []
    for i, ref in enumerate(like_leaves):
        x = flat[f"leaf_{i:05d}"]
        if _is_key(ref):
            impl = getattr(ref.dtype, "_impl", None)
            x = jax.random.wrap_key_data(jnp.asarray(x), impl=impl)
        expected = tuple(ref.shape)
        if tuple(x.shape) != expected:
            raise CheckpointError(
                f"{where}: array {i} has shape {tuple(x.shape)}, this run's state {expected}."
            )
        out.append(x if _is_key(ref) else jnp.asarray(x, dtype=ref.dtype))
    return jax.tree.unflatten(treedef, out)


def _encode(name: str) -> str:
    return name.replace("/", "__")


class Checkpoints:
    """Save / restore-latest of `(state, history)` pairs under one folder."""

    def __init__(self, directory: str, keep: int = 2):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}.")
        self.directory = os.path.abspath(directory)
        self._mgr = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        )

    def steps(self) -> list[int]:
        return sorted(self._mgr.all_steps())

    def save(self, step: int, state: Any, history: dict[str, np.ndarray]) -> None:
        meta = {"step": int(step), "num_leaves": len(jax.tree.leaves(state)),
                "metrics": sorted(history)}
        self._mgr.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(_flatten(state)),
                history=ocp.args.StandardSave({_encode(k): np.asarray(v) for k, v in history.items()}),
                meta=ocp.args.JsonSave(meta),
            ),
            force=True,
        )
        self._mgr.wait_until_finished()

    def _restore_raw(self, step: int) -> tuple[dict, dict, dict]:
        r = self._mgr.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(),
                history=ocp.args.StandardRestore(),
                meta=ocp.args.JsonRestore(),
            ),
        )
        meta = r["meta"]
        history = {name: np.asarray(r["history"][_encode(name)]) for name in meta["metrics"]}
        return dict(r["state"]), history, meta

    def _set_aside(self, steps: list[int]) -> str:
        """Moves unusable checkpoints out of the manager's way (kept, never deleted)."""
        aside = self.directory + ".unusable"
        if jax.process_index() == 0:  # of several processes (a shared folder): the first moves
            os.makedirs(aside, exist_ok=True)
            for step in steps:
                target = os.path.join(aside, str(step))
                i = 1
                while os.path.exists(target):
                    target, i = os.path.join(aside, f"{step}_{i}"), i + 1
                os.replace(os.path.join(self.directory, str(step)), target)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices("lfx.checkpoint.set_aside")
        self._mgr.reload()
        return aside

    def restore_latest(self, like: Any) -> tuple[int, Any, dict[str, np.ndarray]] | None:
        """(step, state, history) of the newest readable checkpoint, or None if there is none.

        A checkpoint that cannot be read or does not fit `like` is skipped with a warning naming it;
        if every one fails, `CheckpointError` lists them all.
        """
        failures = []
        for step in reversed(self.steps()):
            where = os.path.join(self.directory, str(step))
            try:
                flat, history, meta = self._restore_raw(step)
                if meta.get("step") != step:
                    raise CheckpointError(f"{where}: its metadata says step {meta.get('step')}.")
                state = _unflatten(flat, like, where)
                bad = [k for k, v in history.items() if v.shape[-1:] != (step,)]
                if bad:
                    raise CheckpointError(f"{where}: metric history {bad[0]!r} is not {step} long.")
            except Exception as err:  # noqa: BLE001 (any unreadable file means: try the previous one)
                msg = f"{where}: {type(err).__name__}: {str(err)[:300]}"
                log.warning("Skipping unreadable checkpoint %s", msg)
                print(f"warning: checkpoint {where} is unusable ({type(err).__name__}); "
                      f"trying the previous one.", flush=True)
                failures.append(msg)
                continue
            if failures:
                moved = self._set_aside([s for s in self.steps() if s > step])
                print(f"Resuming from checkpoint {step}; the unusable newer ones were moved to "
                      f"{moved}.", flush=True)
            return step, state, history
        if failures:
            raise CheckpointError(
                "No usable checkpoint; every one failed to restore:\n  " + "\n  ".join(failures)
                + "\nMove the checkpoints/ folder away to start again, or use another --workdir."
            )
        return None
