"""A MAP-Elites repertoire: fixed centroids, one elite per cell (Mouret & Clune 2015, arXiv:1504.04909).

    cell(d)     = argmin_c ||d - centroid_c||^2          (nearest centroid; QDax's `get_cells_indices`)
    add:          for each cell c hit by the batch, the best child b* = argmax_{b: cell(d_b) = c} f_b
                  (lowest batch index among ties) replaces the incumbent when f_{b*} > f_c (strictly)
    QD-score    = sum_{c filled} (f_c + qd_offset)        (QDax's `default_qd_metrics`)
    coverage    = (filled cells) / C                      (a fraction; QDax reports 100 x this)
    max fitness = max_c f_c                               (-inf when empty)

An empty cell has fitness -inf. The rule of `add` is QDax's `MapElitesRepertoire.add`
(qdax/core/containers/mapelites_repertoire.py, adaptive-intelligent-robotics/QDax 0.5.0): a
segment-max of the batch's fitnesses per cell, then a strict improvement over the incumbent. QDax
leaves the winner among equal fitnesses in one cell to the scatter's order; lfx takes the lowest
batch index (deterministic, and the rule of lfx's MAP-Elites before issue 19).

Centroids:

* `grid_centroids(bins, minval, maxval)`: the centres of a regular grid (QDax's
  `compute_euclidean_centroids`, but in C order: centroid i0 * b1 + i1 is bin i0 of descriptor 0 and
  bin i1 of descriptor 1, where QDax's meshgrid puts descriptor 1 first). A repertoire built on a grid
  keeps its `grid_shape` and finds cells by `floor((d - lo) / (hi - lo) * b)` clipped into the grid
  (O(N) instead of O(N C); the same cell as the nearest centre up to ties on cell borders).
* `cvt_centroids(key, num_centroids, minval, maxval, num_samples)`: a centroidal Voronoi
  tessellation (Vassiliades et al. 2017, arXiv:1610.05729): `num_samples` uniform points in the box,
  k-means by Lloyd iterations from `num_centroids` of the samples, jitted. (QDax 0.5.0 calls
  scikit-learn's KMeans with k-means++ and one restart; earlier QDax versions ran Lloyd iterations
  in JAX as here. The tessellations differ draw by draw, not in kind.)

Shapes: centroids [C, Dd], genotypes a pytree of [C, ...] leaves, fitnesses [C], descriptors [C, Dd];
a batch is [N, ...] / [N] / [N, Dd]. Functions are pure and unjitted; the caller jits and vmaps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class Repertoire:
    centroids: jax.Array  # [C, Dd]
    genotypes: object  # pytree of [C, ...]
    fitnesses: jax.Array  # [C], -inf where empty
    descriptors: jax.Array  # [C, Dd] (zeros where empty)
    # a regular grid (bins per descriptor) and its box, for O(N) cell lookup; None for CVT
    grid_shape: tuple[int, ...] | None = flax.struct.field(pytree_node=False, default=None)
    grid_low: tuple[float, ...] | None = flax.struct.field(pytree_node=False, default=None)
    grid_high: tuple[float, ...] | None = flax.struct.field(pytree_node=False, default=None)

    @property
    def num_centroids(self) -> int:
        return self.centroids.shape[0]


def _bounds(minval, maxval, num_descriptors: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    lo = tuple(float(v) for v in jnp.broadcast_to(jnp.asarray(minval, jnp.float32), (num_descriptors,)))
    hi = tuple(float(v) for v in jnp.broadcast_to(jnp.asarray(maxval, jnp.float32), (num_descriptors,)))
    if any(not h > low for low, h in zip(lo, hi, strict=True)):
        raise ValueError(f"Every maxval must exceed its minval, got minval={lo}, maxval={hi}.")
    return lo, hi


def grid_centroids(bins: int | Sequence[int], minval, maxval, num_descriptors: int | None = None) -> jax.Array:
    """[prod(bins), Dd] centres of a regular grid over [minval, maxval] (C order, descriptor 0 major).

    Args:
      bins: bins per descriptor (an int repeats over `num_descriptors`, default 2).
      minval, maxval: scalars or [Dd] bounds.
    """
    if isinstance(bins, int):
        bins = (bins,) * (num_descriptors or 2)
    bins = tuple(int(b) for b in bins)
    if not bins or any(b <= 0 for b in bins):
        raise ValueError(f"grid bins must be positive integers, got {bins}.")
    lo, hi = _bounds(minval, maxval, len(bins))
    axes = [(jnp.arange(b, dtype=jnp.float32) + 0.5) / b for b in bins]
    mesh = jnp.meshgrid(*axes, indexing="ij")
    unit = jnp.stack([m.ravel() for m in mesh], axis=-1)
    return unit * (jnp.asarray(hi) - jnp.asarray(lo)) + jnp.asarray(lo)


def _nearest_one(point: jax.Array, centroids_t: jax.Array) -> jax.Array:
    """Index of the centroid nearest to one point [Dd]; centroids_t [Dd, C] (transposed).

    sum_k (p_k - c_k)^2 accumulated over the descriptor axis in order, as QDax's
    `jnp.sum(jnp.square(p - c), -1)` (the same cells; on CPU XLA runs the [C]-vector form ~10x
    faster than the [C, Dd] one with its short minor axis).
    """
    d = jnp.square(point[0] - centroids_t[0])
    for k in range(1, centroids_t.shape[0]):
        d = d + jnp.square(point[k] - centroids_t[k])
    return jnp.argmin(d)


def _nearest(points: jax.Array, centroids: jax.Array) -> jax.Array:
    """[N] index of the nearest centroid of each point [N, Dd] (squared Euclidean, first argmin)."""
    ct = centroids.T
    return jax.vmap(lambda p: _nearest_one(p, ct))(points)


def lloyd_step(samples: jax.Array, centroids: jax.Array) -> jax.Array:
    """One Lloyd iteration: each centroid moves to the mean of the samples nearest to it (an empty
    cluster keeps its centroid). samples [S, Dd], centroids [C, Dd] -> [C, Dd]."""
    c = centroids.shape[0]
    ct = centroids.T
    idx = jax.lax.map(lambda p: _nearest_one(p, ct), samples, batch_size=1024)
    sums = jnp.zeros_like(centroids).at[idx].add(samples)
    counts = jnp.zeros((c,), samples.dtype).at[idx].add(1.0)
    return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centroids)


def cvt_centroids(key: jax.Array, num_centroids: int, minval, maxval, num_samples: int = 25_000, *,
                  num_descriptors: int | None = None, num_iterations: int = 30) -> jax.Array:
    """[num_centroids, Dd] CVT centroids: k-means (Lloyd) on uniform samples of the box, jitted.

    Args:
      key: the samples' key (the first `num_centroids` samples start the iterations).
      minval, maxval: scalars or [Dd] bounds (Dd from them, or `num_descriptors`, default 2).
      num_samples: uniform points clustered (QDax's `num_init_cvt_samples`).
      num_iterations: Lloyd iterations.
    """
    sizes = {int(jnp.size(jnp.asarray(minval))), int(jnp.size(jnp.asarray(maxval)))} - {1}
    if len(sizes) > 1:
        raise ValueError(f"minval and maxval have different lengths: {minval} and {maxval}.")
    dd = num_descriptors or (sizes.pop() if sizes else 2)
    lo, hi = _bounds(minval, maxval, int(dd))
    if num_centroids <= 0 or num_samples < num_centroids:
        raise ValueError(f"cvt_centroids needs 0 < num_centroids <= num_samples, got "
                         f"{num_centroids} centroids from {num_samples} samples; raise num_samples.")
    if num_iterations < 0:
        raise ValueError(f"num_iterations must be >= 0, got {num_iterations}.")

    @jax.jit
    def fit(key):
        x = jax.random.uniform(key, (num_samples, len(lo)))
        c = jax.lax.fori_loop(0, num_iterations, lambda _, c: lloyd_step(x, c), x[:num_centroids])
        return c * (jnp.asarray(hi) - jnp.asarray(lo)) + jnp.asarray(lo)

    return fit(key)


def init(genotype, centroids: jax.Array, *, grid_shape: Sequence[int] | None = None, minval=None,
         maxval=None) -> Repertoire:
    """An empty repertoire for genotypes shaped like `genotype` (one, no batch axis).

    Pass `grid_shape`, `minval`, `maxval` (the arguments of `grid_centroids`) for a grid's O(N) cell
    lookup; without them cells are found by nearest centroid.
    """
    c, dd = centroids.shape
    if grid_shape is not None:
        grid_shape = tuple(int(b) for b in grid_shape)
        if math.prod(grid_shape) != c or len(grid_shape) != dd:
            raise ValueError(f"grid_shape {grid_shape} does not match centroids of shape {centroids.shape}.")
        lo, hi = _bounds(minval, maxval, dd)
    else:
        lo = hi = None
    return Repertoire(
        centroids=jnp.asarray(centroids, jnp.float32),
        genotypes=jax.tree.map(lambda x: jnp.zeros((c,) + jnp.shape(x), jnp.asarray(x).dtype), genotype),
        fitnesses=jnp.full((c,), -jnp.inf, jnp.float32),
        descriptors=jnp.zeros((c, dd), jnp.float32),
        grid_shape=grid_shape, grid_low=lo, grid_high=hi)


def cell_indices(repertoire: Repertoire, descriptors: jax.Array) -> jax.Array:
    """[N] int32 cell of each descriptor [N, Dd]."""
    if repertoire.grid_shape is None:
        return _nearest(descriptors, repertoire.centroids).astype(jnp.int32)
    b = jnp.asarray(repertoire.grid_shape)
    lo, hi = jnp.asarray(repertoire.grid_low), jnp.asarray(repertoire.grid_high)
    cell = jnp.clip(jnp.floor((descriptors - lo) / (hi - lo) * b).astype(jnp.int32), 0, b - 1)
    strides = jnp.asarray([math.prod(repertoire.grid_shape[i + 1:]) for i in range(len(repertoire.grid_shape))],
                          jnp.int32)
    return jnp.sum(cell * strides, axis=-1)


def add_with_mask(repertoire: Repertoire, genotypes, descriptors: jax.Array, fitnesses: jax.Array,
                  valid: jax.Array | None = None) -> tuple[Repertoire, jax.Array]:
    """`add`, also returning which batch rows entered the repertoire ([N] bool).

    Rows with `valid` False (e.g. evaluations the budget refused) are ignored.
    """
    c = repertoire.num_centroids
    n = fitnesses.shape[0]
    cell = cell_indices(repertoire, descriptors)
    fit = fitnesses.astype(jnp.float32)
    if valid is not None:
        fit = jnp.where(valid, fit, -jnp.inf)
    best = jnp.full((c,), -jnp.inf).at[cell].max(fit)
    winner = (fit == best[cell]) & (fit > -jnp.inf)
    first = jnp.full((c,), n).at[jnp.where(winner, cell, c)].min(jnp.arange(n), mode="drop")
    better = winner & (first[cell] == jnp.arange(n)) & (fit > repertoire.fitnesses[cell])
    tgt = jnp.where(better, cell, c)
    rep = repertoire.replace(
        genotypes=jax.tree.map(lambda r, g: r.at[tgt].set(g, mode="drop"), repertoire.genotypes, genotypes),
        fitnesses=repertoire.fitnesses.at[tgt].set(fit, mode="drop"),
        descriptors=repertoire.descriptors.at[tgt].set(descriptors.astype(jnp.float32), mode="drop"))
    return rep, better


def add(repertoire: Repertoire, genotypes, descriptors: jax.Array, fitnesses: jax.Array,
        valid: jax.Array | None = None) -> Repertoire:
    """Inserts a batch: genotypes pytree [N, ...], descriptors [N, Dd], fitnesses [N] (see module)."""
    return add_with_mask(repertoire, genotypes, descriptors, fitnesses, valid)[0]


def filled(repertoire: Repertoire) -> jax.Array:
    return repertoire.fitnesses > -jnp.inf


def qd_score(repertoire: Repertoire, qd_offset: float | jax.Array = 0.0) -> jax.Array:
    """sum over filled cells of (fitness + qd_offset) (QDax's definition)."""
    f = filled(repertoire)
    return jnp.sum(jnp.where(f, repertoire.fitnesses + qd_offset, 0.0))


def coverage(repertoire: Repertoire) -> jax.Array:
    """Fraction of filled cells (QDax's `coverage` / 100)."""
    return jnp.mean(filled(repertoire).astype(jnp.float32))


def max_fitness(repertoire: Repertoire) -> jax.Array:
    return jnp.max(repertoire.fitnesses)


def metrics(repertoire: Repertoire, qd_offset: float | jax.Array = 0.0) -> dict[str, jax.Array]:
    """{"me/qd_score", "me/coverage", "me/max_fitness"} of the repertoire (jittable)."""
    return {"me/qd_score": qd_score(repertoire, qd_offset), "me/coverage": coverage(repertoire),
            "me/max_fitness": max_fitness(repertoire)}


def sample_uniform(key: jax.Array, repertoire: Repertoire, n: int) -> jax.Array:
    """[n] cells drawn uniformly (with replacement) among the filled ones (QDax's UniformSelector).

    On an empty repertoire every probability is nan; callers insert an initial batch first.
    """
    f = filled(repertoire)
    return jax.random.choice(key, repertoire.num_centroids, (n,), p=f / f.sum())
