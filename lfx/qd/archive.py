"""Fixed-capacity archive of genomes and behaviour descriptors (novelty-search archive).

Novelty search (Lehman & Stanley, "Abandoning Objectives", 2011) keeps an archive of past
behaviours; lfx stores it in arrays of fixed capacity so every update is jittable:

    genomes      [C, D]   policy parameters (flat)
    descriptors  [C, B]   behaviour descriptors (hand-designed or learned)
    extras       [C, ...] anything to recompute descriptors later (e.g. TAXONS' observations)
    valid        [C]      which slots hold an entry
    count        []       entries inserted so far (may exceed C; the slots never do)

Insertion rule (documented, and what the tests check): the candidates with `mask=True` are written,
in their order, into the slots `count % C, (count + 1) % C, ...`. Until the archive is full this
fills the free slots in order; once full, the oldest entries are overwritten first (a ring buffer),
so the archive always holds the `min(count, C)` most recently inserted entries and never more than C.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class Archive:
    genomes: jax.Array  # [C, D]
    descriptors: jax.Array  # [C, B]
    extras: Any  # pytree with leading axis C
    valid: jax.Array  # [C] bool
    count: jax.Array  # [] int32, total insertions so far

    @property
    def capacity(self) -> int:
        return self.valid.shape[0]

    @property
    def size(self) -> jax.Array:
        return jnp.minimum(self.count, self.capacity)


def init_archive(capacity: int, genome_dim: int, descriptor_dim: int, extras_example: Any = None) -> Archive:
    """An empty archive.

    Args:
      capacity: C, the maximal number of entries (a static shape).
      genome_dim: D.
      descriptor_dim: B.
      extras_example: a pytree for ONE entry (e.g. an image [H, W]); zeros of `[C, *shape]` are
        allocated for it. None stores nothing.
    """
    if capacity <= 0:
        raise ValueError(f"Archive capacity must be positive, got {capacity}.")
    extras = jax.tree.map(
        lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), extras_example
    )
    return Archive(
        genomes=jnp.zeros((capacity, genome_dim), jnp.float32),
        descriptors=jnp.zeros((capacity, descriptor_dim), jnp.float32),
        extras=extras,
        valid=jnp.zeros((capacity,), bool),
        count=jnp.zeros((), jnp.int32),
    )


def insert(archive: Archive, genomes: jax.Array, descriptors: jax.Array, mask: jax.Array,
           extras: Any = None) -> Archive:
    """Writes the masked candidates into the ring buffer (see the module docstring).

    Args:
      archive: the archive.
      genomes: [N, D] candidates.
      descriptors: [N, B].
      mask: [N] bool, which candidates to insert. At most C of them may be True in one call
        (more would overwrite each other within the call; the caller selects first).
      extras: pytree with leading axis N matching `archive.extras` (or None).

    Returns:
      The archive with `count` increased by `mask.sum()`.
    """
    mask = mask.astype(bool)
    capacity = archive.capacity
    rank = jnp.cumsum(mask) - 1  # position among inserted candidates
    slot = jnp.where(mask, (archive.count + rank) % capacity, capacity)  # capacity = dropped
    write = lambda buf, new: buf.at[slot].set(new.astype(buf.dtype), mode="drop")
    new_extras = archive.extras
    if extras is not None:
        new_extras = jax.tree.map(write, archive.extras, extras)
    return archive.replace(
        genomes=write(archive.genomes, genomes),
        descriptors=write(archive.descriptors, descriptors),
        extras=new_extras,
        valid=archive.valid.at[slot].set(True, mode="drop"),
        count=archive.count + mask.sum().astype(jnp.int32),
    )


def top_k_mask(scores: jax.Array, k: int, valid: jax.Array | None = None) -> jax.Array:
    """[N] bool mask of the k highest `scores` among `valid` entries (ties: lower index first)."""
    if valid is not None:
        scores = jnp.where(valid, scores, -jnp.inf)
    k = min(k, scores.shape[0])
    _, idx = jax.lax.top_k(scores, k)
    mask = jnp.zeros(scores.shape, bool).at[idx].set(True)
    if valid is not None:
        mask = mask & valid
    return mask
