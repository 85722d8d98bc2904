"""Gaussian mutation of flat policy genomes.

    x' = clip(x + m * sigma * eps, lo, hi),  eps ~ N(0, I),  m_i ~ Bernoulli(p) per offspring

as in Paolo et al.'s NS/TAXONS/SERENE code (genomes clipped to [-5, 5], SERENE arXiv:2102.03140;
mutation probability 0.9 per offspring in TAXONS arXiv:1911.07006: with probability 1 - p an
offspring is a copy of its parent).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gaussian_mutation(
    key: jax.Array,
    genomes: jax.Array,
    *,
    sigma: float | jax.Array,
    mutation_prob: float = 1.0,
    clip: tuple[float, float] | None = (-5.0, 5.0),
) -> jax.Array:
    """Mutates each row of genomes [N, D] (sigma may be a scalar or [N] per-row)."""
    k_eps, k_mut = jax.random.split(key)
    eps = jax.random.normal(k_eps, genomes.shape, genomes.dtype)
    sigma = jnp.asarray(sigma, genomes.dtype)
    if sigma.ndim == 1:
        sigma = sigma[:, None]
    mutate = jax.random.bernoulli(k_mut, mutation_prob, (genomes.shape[0], 1))
    out = genomes + jnp.where(mutate, sigma * eps, 0.0)
    if clip is not None:
        out = jnp.clip(out, clip[0], clip[1])
    return out
