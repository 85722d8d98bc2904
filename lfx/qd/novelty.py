"""k-nearest-neighbour novelty with validity masks.

    novelty(x) = (1/k) * sum_{j in kNN(x)} ||x - r_j||_2

over the valid reference points r (population plus archive), the query itself excluded. Novelty
search: Lehman & Stanley, "Abandoning Objectives: Evolution Through the Search for Novelty Alone"
(Evolutionary Computation 2011); k = 15 as in Paolo et al. (TAXONS arXiv:1911.07006, SERENE
arXiv:2102.03140, STAX arXiv:2203.15474). When fewer than k valid neighbours exist the mean is over
those there are (0 when there are none).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def pairwise_distances(x: jax.Array, y: jax.Array) -> jax.Array:
    """[N, M] Euclidean distances between rows of x [N, B] and y [M, B] (exact, not the Gram trick)."""
    diff = x[:, None, :] - y[None, :, :]
    return jnp.sqrt(jnp.maximum(jnp.sum(diff * diff, axis=-1), 0.0))


def knn_novelty(
    queries: jax.Array,
    references: jax.Array,
    reference_valid: jax.Array | None = None,
    query_index: jax.Array | None = None,
    *,
    k: int = 15,
) -> jax.Array:
    """Mean distance of each query to its k nearest valid references.

    Args:
      queries: [N, B] descriptors whose novelty is wanted.
      references: [M, B] population + archive descriptors.
      reference_valid: [M] bool, which references exist (archive slots may be empty).
      query_index: [N] int, the row of `references` that IS the query (excluded from its own
        neighbours), or -1 when the query is not among the references.
      k: number of neighbours (static).

    Returns:
      [N] novelty scores.
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}.")
    n, m = queries.shape[0], references.shape[0]
    if reference_valid is None:
        reference_valid = jnp.ones((m,), bool)
    d = pairwise_distances(queries, references)
    ok = jnp.broadcast_to(reference_valid[None, :], (n, m))
    if query_index is not None:
        ok = ok & (jnp.arange(m)[None, :] != query_index[:, None])
    kk = min(k, m)
    neg_d, _ = jax.lax.top_k(jnp.where(ok, -d, -jnp.inf), kk)
    nearest = -neg_d  # [N, kk], inf where fewer valid neighbours
    finite = jnp.isfinite(nearest)
    num = jnp.maximum(finite.sum(-1), 1)
    return jnp.where(finite, nearest, 0.0).sum(-1) / num


def population_archive_novelty(
    pop_descriptors: jax.Array,
    archive_descriptors: jax.Array,
    archive_valid: jax.Array,
    pop_valid: jax.Array | None = None,
    *,
    k: int = 15,
) -> jax.Array:
    """Novelty of each population member against (population + archive), itself excluded.

    Args:
      pop_descriptors: [N, B].
      archive_descriptors: [C, B].
      archive_valid: [C] bool.
      pop_valid: [N] bool (members not evaluated, e.g. beyond the budget, are not references).

    Returns:
      [N] novelty.
    """
    n = pop_descriptors.shape[0]
    if pop_valid is None:
        pop_valid = jnp.ones((n,), bool)
    refs = jnp.concatenate([pop_descriptors, archive_descriptors], 0)
    valid = jnp.concatenate([pop_valid, archive_valid], 0)
    return knn_novelty(pop_descriptors, refs, valid, jnp.arange(n), k=k)
