"""MAP-Elites emitters: Gaussian mutation, iso-line variation, and MAP-Elites-ES.

An emitter is an `Emitter(init, emit, update, batch_size, insert)`:

    state          = init(key, repertoire, genotypes [N, D], fitnesses [N], descriptors [N, Dd])
    batch, state   = emit(key_select, key_vary, repertoire, state, hparams)      # batch [B, D]
    state          = update(state, repertoire, batch, fitnesses [B], descriptors [B, Dd], valid [B], hparams)

The algorithm (lfx.qd.map_elites) evaluates the whole batch and inserts the rows where `insert` [B]
(static) is True; `update` sees every row. `hparams` is a `lfx.qd.map_elites.HParams` (traced:
sigma, line_sigma, es_sigma, es_lr). Genotypes are flat [D] vectors (lfx.qd's genomes).

* Gaussian (Mouret & Clune 2015, arXiv:1504.04909): parents uniform over the filled cells,
  x' = clip(x + sigma * N(0, I)) (`lfx.qd.mutation.gaussian_mutation`, the draws of lfx's MAP-Elites
  before issue 19).
* Iso-line (Vassiliades & Mouret 2018, "Discovering the elite hypervolume by leveraging interspecies
  correlation", arXiv:1804.03906): two parents x_i, x_j uniform over the filled cells,

      x' = clip(x_i + sigma * N(0, I) + line_sigma * N(0, 1) * (x_j - x_i))

  (one N(0, 1) per child; QDax's `isoline_variation`, qdax/core/emitters/mutation_operators.py). The
  isotropic noise is drawn from the Gaussian emitter's stream, so line_sigma = 0 is the Gaussian
  emitter draw for draw.
* MAP-Elites-ES (Colas et al. 2020, "Scaling MAP-Elites to deep neuroevolution", arXiv:2003.01825;
  QDax's `MEESEmitter`, qdax/core/emitters/mees_emitter.py): one ES offspring per generation. Every
  `steps` generations a parent is drawn from the repertoire (exploit: uniformly among the
  `exploit_cells` fittest cells; explore: among the `explore_cells` most novel cells against the
  emitter's archive of offspring descriptors) and Adam restarts; otherwise the parent is the last
  offspring. Each generation evaluates P mirrored samples p +- es_sigma * eps_i (P even) and steps

      g  = -(1 / (P es_sigma)) sum_i (r(p + s eps_i) - r(p - s eps_i)) eps_i + l2 * p
      p' = p + Adam(g; es_lr)             (optax.adam minimises g, so p' ascends the score)

  with r the centered ranks in [-0.5, 0.5] of the score (fitness when exploiting, novelty = mean
  distance to the k nearest archived offspring descriptors when exploring). Mode "explore_exploit"
  alternates blocks of `steps` generations, exploring first (QDax's order). The batch is
  [offspring, P samples]: B = 1 + P evaluations, only the offspring enters the repertoire.
  Differences from QDax, for a single-batch generation: the parent is drawn before (not after) the
  previous offspring is inserted, and QDax's "half of the time among the last updated cells" of the
  exploit draw is left out (always the repertoire's fittest cells).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import optax

from lfx.qd import repertoire as rep_lib
from lfx.qd.mutation import gaussian_mutation


class Emitter(NamedTuple):
    init: Callable[..., Any]
    emit: Callable[..., tuple[jax.Array, Any]]
    update: Callable[..., Any]
    batch_size: int
    insert: tuple[bool, ...]  # [batch_size] rows that enter the repertoire


def _clip(x, clip):
    return x if clip is None else jnp.clip(x, clip[0], clip[1])


def _no_state(key, repertoire, genotypes, fitnesses, descriptors):
    return None


def _keep_state(state, repertoire, genotypes, fitnesses, descriptors, valid, hparams):
    return state


def gaussian_emitter(batch_size: int, clip: tuple[float, float] | None = (-5.0, 5.0)) -> Emitter:
    """`batch_size` children per generation, Gaussian mutation of uniform elites (sigma = hparams.sigma)."""

    def emit(k_select, k_vary, repertoire, state, hparams):
        idx = rep_lib.sample_uniform(k_select, repertoire, batch_size)
        kids = gaussian_mutation(k_vary, repertoire.genotypes[idx], sigma=hparams.sigma, clip=clip)
        return kids, state

    return Emitter(_no_state, emit, _keep_state, batch_size, (True,) * batch_size)


def isoline(key_select, key_vary, repertoire, n: int, *, sigma, line_sigma, clip=None) -> jax.Array:
    """[n, D] iso-line children of uniform elite pairs (see the module docstring)."""
    i = rep_lib.sample_uniform(key_select, repertoire, n)
    j = rep_lib.sample_uniform(jax.random.fold_in(key_select, 1), repertoire, n)
    xi, xj = repertoire.genotypes[i], repertoire.genotypes[j]
    k_eps, _ = jax.random.split(key_vary)  # gaussian_mutation's noise stream
    eps = jax.random.normal(k_eps, xi.shape, xi.dtype)
    line = jax.random.normal(jax.random.fold_in(key_vary, 1), (n, 1), xi.dtype)
    sigma = jnp.asarray(sigma, xi.dtype)
    line_sigma = jnp.asarray(line_sigma, xi.dtype)
    return _clip(xi + sigma * eps + line_sigma * line * (xj - xi), clip)


def isoline_emitter(batch_size: int, clip: tuple[float, float] | None = (-5.0, 5.0)) -> Emitter:
    """`batch_size` iso-line children per generation (sigma = hparams.sigma, hparams.line_sigma)."""

    def emit(k_select, k_vary, repertoire, state, hparams):
        kids = isoline(k_select, k_vary, repertoire, batch_size, sigma=hparams.sigma,
                       line_sigma=hparams.line_sigma, clip=clip)
        return kids, state

    return Emitter(_no_state, emit, _keep_state, batch_size, (True,) * batch_size)


@flax.struct.dataclass
class ESState:
    offspring: jax.Array  # [D] the genotype evaluated (and inserted) this generation
    parent: jax.Array  # [D] the point the samples surround
    half_noise: jax.Array  # [P/2, D] eps of this generation's mirrored samples
    opt_state: Any  # Adam on the parent
    count: jax.Array  # [] int32 generations so far
    archive: jax.Array  # [A, Dd] offspring descriptors (ring buffer)
    archive_count: jax.Array  # [] int32 descriptors pushed so far


def centered_ranks(scores: jax.Array) -> jax.Array:
    """[P] ranks of scores mapped to [-0.5, 0.5] (QDax's `sample_rank_norm`; ties by index)."""
    p = scores.shape[0]
    return jnp.argsort(jnp.argsort(scores)).astype(jnp.float32) / (p - 1) - 0.5


def es_gradient(half_noise: jax.Array, scores: jax.Array, sigma, parent: jax.Array, l2: float) -> jax.Array:
    """[D] the ES gradient to minimise (QDax's `_es_emitter`): samples interleaved +eps_0, -eps_0, ...

    half_noise [P/2, D]; scores [P] of the samples in that order; parent [D].
    """
    half = half_noise.shape[0]
    r = centered_ranks(scores).reshape(half, 2)
    g = -jnp.sum(half_noise * (r[:, 0] - r[:, 1])[:, None], axis=0) / (2 * half * sigma)
    return g + l2 * parent


def knn_novelty(descriptors: jax.Array, archive: jax.Array, count: jax.Array, k: int) -> jax.Array:
    """[N] mean distance to the min(k, count) nearest of the first min(count, A) archive rows (0 if none)."""
    a = archive.shape[0]
    d = jnp.sqrt(jnp.sum(jnp.square(descriptors[:, None, :] - archive[None, :, :]), axis=-1))
    d = jnp.where(jnp.arange(a)[None, :] < count, d, jnp.inf)
    kk = min(k, a)
    nearest = -jax.lax.top_k(-d, kk)[0]  # [N, kk] ascending
    m = jnp.minimum(jnp.minimum(count, a), kk)
    use = jnp.arange(kk)[None, :] < m
    return jnp.where(m > 0, jnp.sum(jnp.where(use, nearest, 0.0), -1) / jnp.maximum(m, 1), 0.0)


def _top_cells(key, scores, n):
    """A cell drawn uniformly among those whose score is >= the n-th largest (QDax's rule)."""
    top = jax.lax.top_k(scores, n)[0]
    cut = jnp.min(jnp.where(top > -jnp.inf, top, jnp.inf))
    ok = scores >= cut
    return jax.random.choice(key, scores.shape[0], p=ok / ok.sum())


def es_emitter(population: int, *, steps: int = 10, mode: str = "explore_exploit", l2: float = 0.02,
               novelty_k: int = 10, exploit_cells: int = 2, explore_cells: int = 5, archive_size: int = 1000,
               clip: tuple[float, float] | None = (-5.0, 5.0)) -> Emitter:
    """MAP-Elites-ES (see the module docstring); QDax's MEESConfig defaults except `population`.

    Args:
      population: P mirrored samples per generation (even; QDax's sample_number, 1000).
      steps: generations between parent draws (QDax's num_optimizer_steps).
      mode: "exploit" (fitness), "explore" (novelty) or "explore_exploit" (alternating).
      l2: L2 coefficient added to the ES gradient (QDax's l2_coefficient).
      archive_size: capacity of the offspring-descriptor archive (QDax: total generations).
      clip: bounds of the offspring genotype (the samples are not clipped, as in QDax).
    """
    if population < 2 or population % 2:
        raise ValueError(f"The ES emitter's population must be even and >= 2, got {population}.")
    if mode not in ("exploit", "explore", "explore_exploit"):
        raise ValueError(f"ES emitter mode must be 'exploit', 'explore' or 'explore_exploit', got {mode!r}.")
    for name, v in (("steps", steps), ("novelty_k", novelty_k), ("exploit_cells", exploit_cells),
                    ("explore_cells", explore_cells), ("archive_size", archive_size)):
        if v <= 0:
            raise ValueError(f"ES emitter {name} must be positive, got {v}.")
    half = population // 2
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=0.01)

    def exploring(count):
        if mode == "explore":
            return jnp.asarray(True)
        if mode == "exploit":
            return jnp.asarray(False)
        return (count // steps) % 2 == 0

    def init(key, repertoire, genotypes, fitnesses, descriptors):
        x0 = genotypes[0]
        return ESState(offspring=x0, parent=x0, half_noise=jnp.zeros((half, x0.shape[0]), x0.dtype),
                       opt_state=opt.init(x0), count=jnp.zeros((), jnp.int32),
                       archive=jnp.zeros((archive_size, descriptors.shape[-1]), jnp.float32),
                       archive_count=jnp.zeros((), jnp.int32))

    def emit(k_select, k_vary, repertoire, st, hparams):
        resample = st.count % steps == 0
        f = rep_lib.filled(repertoire)
        n_k, n_x = min(exploit_cells, f.shape[0]), min(explore_cells, f.shape[0])
        nov = jnp.where(f, knn_novelty(repertoire.descriptors, st.archive, st.archive_count, novelty_k), -jnp.inf)
        cell = jnp.where(exploring(st.count), _top_cells(k_select, nov, n_x),
                         _top_cells(k_select, repertoire.fitnesses, n_k))
        parent = jnp.where(resample, repertoire.genotypes[cell], st.offspring)
        opt_state = jax.tree.map(lambda a, b: jnp.where(resample, a, b), opt.init(parent), st.opt_state)
        eps = jax.random.normal(k_vary, (half, parent.shape[0]), parent.dtype)
        noise = jnp.stack([eps, -eps], axis=1).reshape(population, -1)  # +eps_0, -eps_0, +eps_1, ...
        samples = parent + hparams.es_sigma * noise
        st = st.replace(parent=parent, half_noise=eps, opt_state=opt_state)
        return jnp.concatenate([st.offspring[None], samples], axis=0), st

    def update(st, repertoire, batch, fitnesses, descriptors, valid, hparams):
        pos = st.archive_count % archive_size
        archive = jnp.where(valid[0], st.archive.at[pos].set(descriptors[0].astype(jnp.float32)), st.archive)
        archive_count = st.archive_count + valid[0].astype(jnp.int32)
        fit = fitnesses[1:].astype(jnp.float32)
        nov = knn_novelty(descriptors[1:], archive, archive_count, novelty_k)
        scores = jnp.where(exploring(st.count), nov, fit)
        scores = jnp.where(valid[1:], scores, -jnp.inf)
        grad = es_gradient(st.half_noise, scores, hparams.es_sigma, st.parent, l2)
        opt_state = st.opt_state._replace(hyperparams={
            **st.opt_state.hyperparams, "learning_rate": jnp.asarray(hparams.es_lr, jnp.float32)})
        upd, opt_state = opt.update(grad, opt_state, st.parent)
        nxt = _clip(optax.apply_updates(st.parent, upd), clip)
        return st.replace(offspring=nxt, opt_state=opt_state, count=st.count + 1,
                          archive=archive, archive_count=archive_count)

    return Emitter(init, emit, update, 1 + population, (True,) + (False,) * population)
