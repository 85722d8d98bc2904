"""Scale-out: shard the seed / population axis of a vmapped run across devices and hosts.

The same jitted function runs on one device or many: inputs whose leading axis is the population
(seeds, hyperparameter settings, ES members) are placed with a `NamedSharding` over a 1-D `Mesh` of
all devices, and XLA partitions the vmapped computation along that axis (members are independent,
so no communication is needed). Several hosts: call `initialize_distributed()` first on every host
(behind a flag in the scripts); `jax.devices()` then spans all hosts.

Test on a CPU with `XLA_FLAGS=--xla_force_host_platform_device_count=4`.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "population"


def initialize_distributed(**kwargs: Any) -> None:
    """Multi-host set-up: `jax.distributed.initialize(**kwargs)` (coordinator from the cluster env)."""
    jax.distributed.initialize(**kwargs)


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
    axes are not split.
    """
    sharding = NamedSharding(mesh, PartitionSpec(*([None] * axis), axis_name))
    leaves = jax.tree.leaves(tree)
    if leaves:
        check_divisible(leaves[0].shape[axis], mesh)
    return jax.device_put(tree, sharding)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Places every leaf whole on every device (shared inputs such as hyperparameters)."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))
