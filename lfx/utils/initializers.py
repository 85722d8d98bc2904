"""An orthogonal initializer that needs no LAPACK call, so it is safe under `vmap` on CPU.

Why: `flax.linen.initializers.orthogonal` takes a QR decomposition. Under `vmap` (a population of
agents initialised at once) that becomes a batched LAPACK custom call, which jaxlib 0.10's CPU runtime
runs with a nested parallel batch map on the intra-op thread pool; on a 2-core machine two such
calls scheduled concurrently wait on each other for ever (observed: `lapack_sorgqr_ffi` ->
`ParallelBatchMap` -> `BlockingCounter::Wait` in every pool thread).

Here the orthogonal matrix is the polar factor U V^T of a Gaussian matrix A = U S V^T. For Gaussian
A, U and V are Haar-distributed and independent, so U V^T is Haar-distributed: the same law as the
sign-corrected QR factor (Mezzadri 2007, "How to generate random matrices from the classical compact
groups", arXiv:math-ph/0609050). The polar factor is computed with the Newton-Schulz iteration
X <- 1.5 X - 0.5 X X^T X (matrix products only), which converges when the singular values of X_0 lie
in (0, sqrt(3)); X_0 = A / ||A||_F puts them in (0, 1].
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

NEWTON_SCHULZ_STEPS = 60


def polar_orthogonal(key: jax.Array, rows: int, cols: int) -> jax.Array:
    """A Haar-random [rows, cols] matrix with orthonormal columns (rows >= cols) or rows."""
    tall = rows >= cols
    a = jax.random.normal(key, (rows, cols) if tall else (cols, rows), jnp.float32)
    x = a / jnp.sqrt(jnp.sum(a * a))

    def step(x, _):
        return 1.5 * x - 0.5 * x @ (x.T @ x), None

    x, _ = jax.lax.scan(step, x, None, NEWTON_SCHULZ_STEPS)
    return x if tall else x.T


def orthogonal(scale: float = 1.0):
    """Drop-in for `flax.linen.initializers.orthogonal(scale)` (last axis = output features)."""

    def init(key, shape, dtype=jnp.float32):
        rows, cols = math.prod(shape[:-1]), shape[-1]
        return (scale * polar_orthogonal(key, rows, cols)).reshape(shape).astype(dtype)

    return init
