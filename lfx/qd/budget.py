"""Exact counting of policy evaluations under a fixed budget.

Every algorithm in lfx.qd evaluates fixed-shape batches (one vmapped call per generation). When a
batch would overshoot the budget, only its first `remaining` members count: the rest are rolled out
(the shape is static) but flagged invalid, and no algorithm reads their results. Hence, after any
sequence of calls, `used == min(budget, requested)` exactly, and `used <= budget` always.
"""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class EvalCounter:
    used: jax.Array  # [] int32
    budget: jax.Array  # [] int32


def init_counter(budget: int) -> EvalCounter:
    if budget <= 0:
        raise ValueError(f"The evaluation budget must be positive, got {budget}.")
    return EvalCounter(used=jnp.zeros((), jnp.int32), budget=jnp.asarray(budget, jnp.int32))


def request(
    counter: EvalCounter, n: int, want: jax.Array | None = None, limit: jax.Array | int | None = None
) -> tuple[EvalCounter, jax.Array]:
    """Grants evaluations to a batch of n candidates.

    Args:
      counter: the counter.
      n: the static batch size.
      want: [n] bool, the candidates asking to be evaluated (default all).
      limit: optional cap on how many this call may use (e.g. what is left of a scheduler's chunk).

    Returns:
      (counter, granted [n] bool): the first wanted candidates that fit in the remaining budget.
    """
    if want is None:
        want = jnp.ones((n,), bool)
    remaining = counter.budget - counter.used
    if limit is not None:
        remaining = jnp.minimum(remaining, jnp.maximum(jnp.asarray(limit, jnp.int32), 0))
    rank = jnp.cumsum(want.astype(jnp.int32))  # 1-based among wanted
    granted = want & (rank <= remaining)
    return counter.replace(used=counter.used + granted.sum().astype(jnp.int32)), granted


def exhausted(counter: EvalCounter) -> jax.Array:
    return counter.used >= counter.budget
