"""Integer text encoding of solutions and fitness for EvoLLM prompts.

EvoLLM (Lange, Tian, Tang 2024, "Large Language Models As Evolution Strategies", arXiv:2402.18381)
shows the LM discretised numbers. lfx's encoding (our reading of the paper; no official code exists):

* a coordinate x becomes the integer round(x * 10**x_decimals) (the "resolution"; x_decimals is the
  digits ablation), e.g. x = -1.234, x_decimals = 2 -> "-123"; decoding divides by 10**x_decimals;
* a fitness value becomes an integer in [0, 10**fitness_digits - 1] by min-max scaling over the
  context (larger = better, since lfx maximises), so the scale of the objective never leaks into the
  prompt: f_int = round((f - min f) / (max f - min f) * (10**fitness_digits - 1)) (0 when all equal).

The JAX functions here run inside jit; `format_*`/`parse_*` are the host-side text halves.
"""

from __future__ import annotations

import jax.numpy as jnp


def max_abs_int(x_bound: float, x_decimals: int) -> int:
    """Largest integer |round(x * 10**d)| for |x| <= x_bound."""
    return int(round(x_bound * 10**x_decimals))


def num_int_digits(x_bound: float, x_decimals: int) -> int:
    """Digits needed to write any in-range coordinate integer (the grammar's max digit count)."""
    return len(str(max_abs_int(x_bound, x_decimals)))


def discretise_x(x, x_decimals: int, x_bound: float):
    """[...] floats -> [...] int32 round(clip(x, +-x_bound) * 10**x_decimals)."""
    return jnp.round(jnp.clip(x, -x_bound, x_bound) * 10.0**x_decimals).astype(jnp.int32)


def undiscretise_x(x_int, x_decimals: int):
    """[...] ints -> [...] floats x_int / 10**x_decimals."""
    return x_int.astype(jnp.float32) / 10.0**x_decimals


def discretise_fitness(fitness, fitness_digits: int):
    """[L] fitness (maximised) -> [L] int32 in [0, 10**fitness_digits - 1], best -> largest."""
    top = 10**fitness_digits - 1
    lo, hi = jnp.min(fitness), jnp.max(fitness)
    span = jnp.where(hi > lo, hi - lo, 1.0)
    return jnp.round((fitness - lo) / span * top).astype(jnp.int32)


def format_numbers(ints) -> str:
    """[k] ints -> "a,b,c"."""
    return ",".join(str(int(v)) for v in ints)


def parse_numbers(text: str, k: int) -> list[int] | None:
    """Inverse of `format_numbers` for exactly k integers; None if `text` is not of that form."""
    parts = text.split(",")
    if len(parts) != k:
        return None
    out = []
    for p in parts:
        digits = p[1:] if p.startswith("-") else p
        if not digits or not digits.isascii() or not digits.isdigit():
            return None
        out.append(int(p))
    return out
