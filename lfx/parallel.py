"""Scale-out: shard the seed / population axis of a vmapped run across devices and hosts.

The same jitted function runs on one device or many: inputs whose leading axis is the population
(seeds, hyperparameter settings, ES members) are placed with a `NamedSharding` over a 1-D `Mesh` of
all devices, and XLA partitions the vmapped computation along that axis (members are independent,
so no communication is needed). Several hosts: `initialize_distributed()` runs first on every host
(`LFX_DISTRIBUTED=1` makes `import lfx` call it); `jax.devices()` then spans all hosts, and
`allgather` reads a result split over them. docs/SCALING.md has the launch lines.

Test on a CPU with `XLA_FLAGS=--xla_force_host_platform_device_count=4`; several processes on one
machine as in tests/test_distributed.py.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "population"


def initialize_distributed(**kwargs: Any) -> None:
    """Multi-host set-up: `jax.distributed.initialize(**kwargs)`, once per process, before any jax op.

    With no arguments jax reads the cluster: SLURM (`srun`), Open MPI, Cloud TPU pods, Kubernetes.
    By hand (e.g. several processes on one machine) set `JAX_COORDINATOR_ADDRESS=host:port`, read by
    jax, and `LFX_NUM_PROCESSES` / `LFX_PROCESS_ID`, read here when those kwargs are not given.
    A second call (e.g. a script's own after `LFX_DISTRIBUTED=1` made `import lfx` call it) does
    nothing.
    """
    if jax.distributed.is_initialized():
        return
    for name, var in (("num_processes", "LFX_NUM_PROCESSES"), ("process_id", "LFX_PROCESS_ID")):
        if name not in kwargs and os.environ.get(var):
            kwargs[name] = int(os.environ[var])
    try:
        jax.distributed.initialize(**kwargs)
    except RuntimeError as err:
        if "must be called before" not in str(err):
            raise
        raise RuntimeError(
            f"{err} In lfx, importing gymnax (lfx.envs, lfx.rl, ...) creates jax arrays and so "
            "starts the backend: call initialize_distributed() before those imports (or set "
            "LFX_DISTRIBUTED=1, which calls it at `import lfx`)."
        ) from err


def make_mesh(devices: list | None = None, axis_name: str = AXIS) -> Mesh:
    """A 1-D mesh over `devices` (default: every device of every host)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (axis_name,))


def check_divisible(size: int, mesh: Mesh, what: str = "population") -> None:
    """Raises ValueError when the sharded axis does not split evenly over the mesh."""
    n = mesh.devices.size
    if size % n:
        raise ValueError(
            f"The {what} axis has size {size}, which does not divide over {n} devices; "
            f"use a multiple of {n} (e.g. {((size + n - 1) // n) * n})."
        )


def shard_population(tree: Any, mesh: Mesh, axis: int = 0, axis_name: str = AXIS) -> Any:
    """Places every leaf with its `axis` (the population / seed axis) split over the mesh.

    Typed PRNG keys are sharded like any other array. Leaves must share that axis' size; the other
    axes are not split. Over several hosts every process passes the same values (jax checks).
    """
    sharding = NamedSharding(mesh, PartitionSpec(*([None] * axis), axis_name))
    leaves = jax.tree.leaves(tree)
    if leaves:
        check_divisible(leaves[0].shape[axis], mesh)
    return _device_put(tree, sharding)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Places every leaf whole on every device (shared inputs such as hyperparameters)."""
    return _device_put(tree, NamedSharding(mesh, PartitionSpec()))


def _device_put(tree: Any, sharding: NamedSharding) -> Any:
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)

    # Across hosts device_put takes host data or uncommitted arrays, not typed PRNG keys: those
    # travel as their key data (one trailing axis more, left unsplit) and are wrapped again.
    def one(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = jax.device_put(jax.random.key_data(x), sharding)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        return jax.device_put(x, sharding)

    return jax.tree.map(one, tree)


def allgather(tree: Any) -> Any:
    """Every leaf as a NumPy array of its whole (global) value, on every process.

    `np.asarray` / `jax.device_get` refuse an array split over devices of several hosts; such
    leaves are gathered with `multihost_utils.process_allgather` (a collective: every process must
    call this with the same tree). Typed PRNG keys come back as their key data.
    """

    def one(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree.map(one, tree)
