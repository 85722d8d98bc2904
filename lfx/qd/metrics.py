"""Quality-diversity metrics on a ground-truth descriptor grid.

* coverage = (occupied cells) / G^2 for a G x G grid (G = 50, Paolo et al.);
* uniformity = 1 - JSD(p, u), with p the normalised histogram over the covered cells and u uniform
  over the same cells, JSD the Jensen-Shannon *distance* (sqrt of the divergence, base 2, so in
  [0, 1]) (STAX arXiv:2203.15474);
* reward areas found: distinct reward-area indices hit so far.

lfx keeps one `Grid` of visit counts of every evaluated policy (all algorithms alike), updated
after each evaluation batch.
"""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class Grid:
    counts: jax.Array  # [G, G] int32
    low: jax.Array  # [2]
    high: jax.Array  # [2]


def init_grid(low, high, bins: int = 50) -> Grid:
    return Grid(
        counts=jnp.zeros((bins, bins), jnp.int32),
        low=jnp.asarray(low, jnp.float32),
        high=jnp.asarray(high, jnp.float32),
    )


def cell_index(grid: Grid, descriptors: jax.Array) -> jax.Array:
    """[N, 2] int cell of each [N, 2] descriptor (clipped into the grid)."""
    g = grid.counts.shape[0]
    u = (descriptors - grid.low) / (grid.high - grid.low)
    return jnp.clip(jnp.floor(u * g).astype(jnp.int32), 0, g - 1)


def add(grid: Grid, descriptors: jax.Array, valid: jax.Array | None = None) -> Grid:
    idx = cell_index(grid, descriptors)
    w = jnp.ones(descriptors.shape[0], jnp.int32) if valid is None else valid.astype(jnp.int32)
    return grid.replace(counts=grid.counts.at[idx[:, 0], idx[:, 1]].add(w))


def coverage(grid: Grid) -> jax.Array:
    return jnp.mean(grid.counts > 0)


def uniformity(grid: Grid) -> jax.Array:
    covered = grid.counts > 0
    n = jnp.maximum(covered.sum(), 1)
    p = grid.counts / jnp.maximum(grid.counts.sum(), 1)
    u = jnp.where(covered, 1.0 / n, 0.0)
    m = 0.5 * (p + u)
    kl = lambda a: jnp.sum(jnp.where(
        a > 0, a * jnp.log2(jnp.where(a > 0, a, 1.0) / jnp.where(m > 0, m, 1.0)), 0.0))
    jsd = 0.5 * kl(p) + 0.5 * kl(u)
    return 1.0 - jnp.sqrt(jnp.clip(jsd, 0.0, 1.0))


def areas_found(found: jax.Array, reward_area: jax.Array, valid: jax.Array | None = None) -> jax.Array:
    """Updates found [A] bool with the areas hit by a batch (reward_area [N], -1 = none)."""
    hit = reward_area >= 0
    if valid is not None:
        hit = hit & valid
    a = found.shape[0]
    return found | jnp.zeros((a,), bool).at[jnp.where(hit, reward_area, a)].set(True, mode="drop")
