"""D4RL-style offline datasets: the arrays, the versioned file format, loaders, the normalised score.

A dataset is a flat sequence of N transitions in the order they were collected (each episode's steps
contiguous), with D4RL's fields (Fu et al. 2020, "D4RL: Datasets for Deep Data-Driven Reinforcement
Learning", arXiv:2004.07219):

    observations       [N, D] float32
    actions            [N, A] float32 in [-1, 1] (continuous), or [N] int32 (discrete)
    rewards            [N]    float32
    next_observations  [N, D] float32   (the true successor, also at an episode's last step)
    terminals          [N]    bool      s' is terminal: no bootstrap
    timeouts           [N]    bool      the episode was cut after this step (time limit, or the end of
                                        collection): bootstrap from s', the next row starts a new episode

`terminals` and `timeouts` are kept apart as D4RL does; an episode ends at a row where either is set.
On disk a dataset is `<name>.npz` (the arrays) plus `<name>.json` (metadata: format version, env,
level, the policy's return, the reference returns, seed and the command that generated it).

The D4RL normalised score of a return R is 100 (R - R_random) / (R_expert - R_random), with the
reference returns stored in the metadata (`ref_min_return`, `ref_max_return`).

`load_d4rl(path)` reads a user's own D4RL (`.hdf5`) or Minari-style file already on disk into the same
arrays; nothing is ever downloaded.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from lfx.offline.types import Batch

FORMAT_VERSION = 1
FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


@struct.dataclass
class Dataset:
    """The arrays of an offline dataset (a pytree: pass it to jitted code as an argument)."""

    observations: jax.Array
    actions: jax.Array
    rewards: jax.Array
    next_observations: jax.Array
    terminals: jax.Array
    timeouts: jax.Array

    @property
    def size(self) -> int:
        return int(self.rewards.shape[-1])

    @property
    def discrete(self) -> bool:
        return self.actions.ndim == self.rewards.ndim


def check(data: Dataset, *, what: str = "dataset") -> None:
    """Raises ValueError naming the field whose shape or dtype breaks the schema."""
    n = data.rewards.shape[0]
    if data.rewards.ndim != 1 or n == 0:
        raise ValueError(f"{what}: rewards must be a non-empty vector [N], got shape {data.rewards.shape}.")
    for name in FIELDS:
        x = getattr(data, name)
        if x.shape[:1] != (n,):
            raise ValueError(f"{what}: {name} has {x.shape[0] if x.ndim else 0} rows, rewards has {n}.")
    if data.observations.ndim != 2 or data.next_observations.shape != data.observations.shape:
        raise ValueError(f"{what}: observations {data.observations.shape} and next_observations "
                         f"{data.next_observations.shape} must both be [N, D].")
    if data.actions.ndim not in (1, 2):
        raise ValueError(f"{what}: actions must be [N, A] (continuous) or [N] (discrete), got "
                         f"{data.actions.shape}.")
    for name in ("terminals", "timeouts"):
        if getattr(data, name).ndim != 1:
            raise ValueError(f"{what}: {name} must be [N], got {getattr(data, name).shape}.")


def episode_ends(data: Dataset) -> np.ndarray:
    """[N] bool: rows after which a new episode starts (terminal or timeout)."""
    return np.asarray(data.terminals, bool) | np.asarray(data.timeouts, bool)


def episode_returns(data: Dataset) -> np.ndarray:
    """The undiscounted returns of the dataset's complete episodes (those that end at a terminal or
    timeout row), in order."""
    ends = np.flatnonzero(episode_ends(data))
    sums = np.cumsum(np.asarray(data.rewards, np.float64))
    totals = sums[ends]
    return np.diff(np.concatenate([[0.0], totals]))


def next_actions(data: Dataset) -> np.ndarray:
    """The dataset action at s' for each row ([N, A] or [N]): row i+1's action inside an episode; at
    an episode's last row (where it is never bootstrapped through a real next action) its own."""
    actions = np.asarray(data.actions)
    out = np.concatenate([actions[1:], actions[-1:]], axis=0)
    last = episode_ends(data)
    out[last] = actions[last]
    return out


def to_batches(data: Dataset) -> Batch:
    """The dataset as one `Batch` of N transitions (what the recipe samples rows from)."""
    check(data)
    return Batch(
        observations=jnp.asarray(data.observations, jnp.float32),
        actions=jnp.asarray(data.actions, jnp.int32 if data.discrete else jnp.float32),
        rewards=jnp.asarray(data.rewards, jnp.float32),
        next_observations=jnp.asarray(data.next_observations, jnp.float32),
        next_actions=jnp.asarray(next_actions(data), jnp.int32 if data.discrete else jnp.float32),
        dones=jnp.asarray(data.terminals, jnp.float32),
    )


def concatenate(*parts: Dataset) -> Dataset:
    """Row-wise concatenation (D4RL's medium-expert = medium then expert)."""
    return jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs], axis=0), *parts)


def normalized_score(episode_return: Any, ref_min_return: float, ref_max_return: float) -> Any:
    """D4RL's 100 (R - R_random) / (R_expert - R_random) (works on arrays and tracers)."""
    return 100.0 * (episode_return - ref_min_return) / (ref_max_return - ref_min_return)


# ---------------------------------------------------------------------------------------------
# Files.


def paths(path: str) -> tuple[str, str]:
    """`<name>`, `<name>.npz` or `<name>.json` -> (the .npz path, the .json path)."""
    base = path.removesuffix(".npz").removesuffix(".json")
    return base + ".npz", base + ".json"


def save(path: str, data: Dataset, metadata: dict[str, Any]) -> tuple[str, str]:
    """Writes `<path>.npz` and `<path>.json`; refuses to overwrite an existing dataset."""
    check(data)
    npz, meta = paths(path)
    for p in (npz, meta):
        if os.path.exists(p):
            raise FileExistsError(f"{p} exists; datasets are never overwritten (delete it or pick "
                                  f"another --out).")
    os.makedirs(os.path.dirname(os.path.abspath(npz)), exist_ok=True)
    np.savez_compressed(npz, **{name: np.asarray(getattr(data, name)) for name in FIELDS})
    info = {"format_version": FORMAT_VERSION, "size": data.size, "discrete": data.discrete,
            "obs_dim": int(data.observations.shape[1]),
            "action_dim": 1 if data.discrete else int(data.actions.shape[1]), **metadata}
    with open(meta, "w") as f:
        json.dump(info, f, indent=2, sort_keys=True)
    return npz, meta


def load(path: str, *, generate_hint: str = "") -> tuple[Dataset, dict[str, Any]]:
    """Reads a dataset written by `save` -> (arrays, metadata). A missing file names the command
    that generates it (`generate_hint`, or the generic one)."""
    npz, meta = paths(path)
    if not (os.path.exists(npz) and os.path.exists(meta)):
        hint = generate_hint or ("python experiments/offline_datasets.py --config="
                                 "experiments/configs/offline_datasets.py:<env> --out=<dir>")
        raise FileNotFoundError(f"No offline dataset at {npz} (+ .json). Generate it with: {hint}")
    with open(meta) as f:
        info = json.load(f)
    if info.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{meta}: format_version {info.get('format_version')} is not "
                         f"{FORMAT_VERSION}; regenerate the dataset with this version of lfx.")
    with np.load(npz) as z:
        data = Dataset(**{name: z[name] for name in FIELDS})
    check(data, what=npz)
    return data, info


def load_d4rl(path: str) -> Dataset:
    """A user's own D4RL `.hdf5` file (or a `.npz` with D4RL's keys) already on disk.

    D4RL files have `observations, actions, rewards, terminals, timeouts` and, in most versions,
    `next_observations`; where that is missing it is rebuilt from the next row (and the episode's
    last row is dropped, as D4RL's `qlearning_dataset` does). Actions are used as stored (D4RL's
    locomotion actions are already in [-1, 1]). Needs h5py for `.hdf5` (`pip install h5py`).
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist (lfx never downloads datasets).")
    if path.endswith((".hdf5", ".h5")):
        try:
            import h5py
        except ImportError as e:
            raise ImportError("Reading D4RL .hdf5 files needs h5py: pip install h5py") from e
        with h5py.File(path, "r") as f:
            raw = {k: np.asarray(f[k]) for k in f.keys() if isinstance(f[k], h5py.Dataset)}
    else:
        with np.load(path) as z:
            raw = {k: z[k] for k in z.files}
    missing = [k for k in ("observations", "actions", "rewards", "terminals") if k not in raw]
    if missing:
        raise ValueError(f"{path} lacks D4RL field(s) {missing}; it has {sorted(raw)}.")
    n = raw["rewards"].shape[0]
    timeouts = raw.get("timeouts", np.zeros(n, bool)).astype(bool)
    terminals = raw["terminals"].astype(bool)
    if "next_observations" in raw:
        keep = np.arange(n)
        nxt = raw["next_observations"]
    else:  # s' is the next row: drop rows cut by a timeout (no successor stored) and the last row
        keep = np.flatnonzero(~timeouts[:-1])
        nxt = raw["observations"][keep + 1]
        # a kept row followed by a dropped timeout row (or the end of the file) ends its episode there
        dropped = timeouts.copy()
        dropped[-1] = True
        cut = dropped[keep + 1] & ~terminals[keep]
        timeouts = np.zeros(n, bool)
        timeouts[keep] = cut
    actions = raw["actions"][keep]
    data = Dataset(
        observations=raw["observations"][keep].astype(np.float32),
        actions=actions.astype(np.int32 if actions.ndim == 1 else np.float32),
        rewards=raw["rewards"][keep].reshape(-1).astype(np.float32),
        next_observations=nxt.astype(np.float32),
        terminals=terminals[keep],
        timeouts=timeouts[keep],
    )
    check(data, what=path)
    return data
