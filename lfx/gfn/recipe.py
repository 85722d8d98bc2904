"""Pieces every GFlowNet recipe shares: the chunk-safe key of an iteration, hyperparameter checks.

A recipe's state carries its run key and iteration counter; iteration `i` draws its randomness from
`iteration_key(run_key, i) = fold_in(run_key, i)`. A run cut into chunks (`init`, then `run` with
any `num_updates`) therefore draws exactly the keys of one uninterrupted scan. With JAX's
partitionable threefry (the default since JAX 0.5) `fold_in(k, i)` equals
`jax.random.split(k, n)[i]`, the keys the single-scan recipes drew before they were chunked, so
their results did not change (tests/gfn/test_gfn_recipe.py checks the identity).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def iteration_key(run_key: jax.Array, step: jax.Array) -> jax.Array:
    """The key of iteration `step` (0-based) of a run whose key is `run_key`."""
    return jax.random.fold_in(run_key, step)


Rule = tuple[Callable[[np.ndarray], np.ndarray], str]

POSITIVE: Rule = (lambda v: v > 0, "must be > 0")
NON_NEGATIVE: Rule = (lambda v: v >= 0, "must be >= 0")
UNIT: Rule = (lambda v: (v >= 0) & (v <= 1), "must be in [0, 1]")
FINITE: Rule = (np.isfinite, "must be finite")


def check_hparams(hparams: Any, rules: dict[str, Rule], where: str = "config.hparams") -> None:
    """Raises ValueError naming the field, its value and the allowed range (traced values skipped).

    NaN fails every rule (each comparison with NaN is false); every checked value must also be
    finite. `where` is the config path the message tells the user to change.
    """
    for name, (ok, text) in rules.items():
        value = getattr(hparams, name)
        if isinstance(value, jax.core.Tracer):
            continue
        x = np.asarray(value, np.float64)
        if not bool(np.all(np.isfinite(x) & ok(x))):
            raise ValueError(
                f"{type(hparams).__name__}.{name}={np.asarray(value).tolist()} {text}"
                f"{'' if text == FINITE[1] else ' and finite'}: set {where}.{name} accordingly."
            )
