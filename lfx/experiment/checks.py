"""Range checks of a recipe's traced `HParams`, skipped for tracers (shared by every lfx family)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

POSITIVE = ("> 0", lambda v: v > 0)
NON_NEGATIVE = (">= 0", lambda v: v >= 0)
UNIT = ("in [0, 1]", lambda v: (v >= 0) & (v <= 1))
OPEN_UNIT = ("in (0, 1)", lambda v: (v > 0) & (v < 1))
HALF_OPEN_UNIT = ("in (0, 1]", lambda v: (v > 0) & (v <= 1))


def check_ranges(hparams, checks: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]]) -> None:
    """Raises ValueError naming the field and its range when a concrete value (scalar or batch) is out
    of range or not finite. Fields holding tracers are skipped, so `validate()` is safe inside jit/vmap.
    """
    for name, (text, ok) in checks.items():
        value = getattr(hparams, name)
        if isinstance(value, jax.core.Tracer):
            continue
        x = np.asarray(value, np.float64)
        if not bool(np.all(ok(x) & np.isfinite(x))):
            owner = f"{type(hparams).__module__.rsplit('.', 1)[-1]}.{type(hparams).__name__}"
            raise ValueError(f"{owner}.{name}={value} must be finite and {text}.")
