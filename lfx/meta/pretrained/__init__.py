"""Discovered meta-parameters shipped with lfx, and their provenance.

Each entry is `<family>/<name>.npz` (the parameter arrays) beside `<family>/<name>.json` (the drift
configuration, the exact command, budget, hardware, wall time and the documented evaluation return).

    params, drift_config, info = load_pretrained("ta_lpo/cartpole_cpu")
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax.numpy as jnp
import numpy as np

from lfx.meta.lpo import DriftConfig

_HERE = os.path.dirname(os.path.abspath(__file__))


def available() -> list[str]:
    """Names accepted by `load_pretrained`."""
    out = []
    for family in sorted(os.listdir(_HERE)):
        d = os.path.join(_HERE, family)
        if os.path.isdir(d) and not family.startswith("_"):
            out += [f"{family}/{f[:-4]}" for f in sorted(os.listdir(d)) if f.endswith(".npz")]
    return out


def load_pretrained(name: str) -> tuple[dict[str, Any], DriftConfig, dict[str, Any]]:
    """Loads shipped meta-parameters.

    Args:
      name: "<family>/<name>", e.g. "ta_lpo/cartpole_cpu" (see `available()`).

    Returns:
      (params pytree of jnp arrays, DriftConfig, provenance dict).

    Raises:
      ValueError: for an unknown name (the message lists the available ones).
    """
    path = os.path.join(_HERE, name)
    if not os.path.exists(path + ".npz"):
        raise ValueError(f"No pretrained parameters {name!r}; available: {available()}.")
    with np.load(path + ".npz") as f:
        params = {k: jnp.asarray(f[k]) for k in f.files}
    with open(path + ".json") as f:
        info = json.load(f)
    return params, DriftConfig(**info["drift_config"]), info


def save_pretrained(name: str, params: dict[str, Any], drift_config: DriftConfig, info: dict) -> str:
    """Writes `<name>.npz` and `<name>.json` under this package (used by experiments/meta_train.py)."""
    import dataclasses  # noqa: PLC0415

    path = os.path.join(_HERE, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path + ".npz", **{k: np.asarray(v) for k, v in params.items()})
    with open(path + ".json", "w") as f:
        json.dump({**info, "drift_config": dataclasses.asdict(drift_config)}, f, indent=1)
    return path
