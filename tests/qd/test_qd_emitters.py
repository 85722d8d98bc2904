"""lfx.qd.emitters: iso-line vs Gaussian, iso-line's line law, MAP-Elites-ES against QDax's formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.qd import emitters as em
from lfx.qd import repertoire as rl
from lfx.qd.map_elites import HParams


def _filled_repertoire(dim=6, seed=0):
    rep = rl.init(jnp.zeros(dim), rl.grid_centroids(4, 0.0, 1.0), grid_shape=(4, 4), minval=0.0, maxval=1.0)
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    g = jax.random.uniform(k1, (40, dim), minval=-2, maxval=2)
    return jax.jit(rl.add)(rep, g, jax.random.uniform(k2, (40, 2)), jax.random.normal(k3, (40,)))


def test_isoline_with_zero_line_sigma_is_the_gaussian_emitter_draw_for_draw():
    rep = _filled_repertoire()
    hp = HParams(sigma=0.3, line_sigma=0.0)
    ks, kv = jax.random.key(11), jax.random.key(12)
    gauss = jax.jit(em.gaussian_emitter(64, clip=(-1.5, 1.5)).emit)
    iso = jax.jit(em.isoline_emitter(64, clip=(-1.5, 1.5)).emit)
    g, _ = gauss(ks, kv, rep, None, hp)
    i, _ = iso(ks, kv, rep, None, hp)
    # equal up to XLA's fusion of the extra `+ 0 * (x_j - x_i)` (one float32 ulp); exact unjitted
    np.testing.assert_allclose(np.asarray(g), np.asarray(i), rtol=0, atol=3e-7)
    assert float(jnp.abs(g).max()) == 1.5  # the clip is applied (sigma 0.3 on [-2, 2] genomes)
    i2, _ = iso(ks, kv, rep, None, hp.replace(line_sigma=0.2))
    assert not np.array_equal(np.asarray(g), np.asarray(i2))


def test_isoline_children_lie_on_the_parents_line_with_normal_coefficient():
    # sigma = 0: x' - x_i = t (x_j - x_i) with one t ~ N(0, line_sigma^2) per child
    rep = _filled_repertoire(dim=5)
    n, ls = 4000, 0.3
    ks, kv = jax.random.key(1), jax.random.key(2)
    kids = jax.jit(lambda r: em.isoline(ks, kv, r, n, sigma=0.0, line_sigma=ls))(rep)
    i, j = jax.jit(lambda r: (rl.sample_uniform(ks, r, n), rl.sample_uniform(jax.random.fold_in(ks, 1), r, n)))(rep)
    xi, xj = np.asarray(rep.genotypes[i]), np.asarray(rep.genotypes[j])
    diff = xj - xi
    ok = np.abs(diff).min(1) > 1e-3  # distinct parents
    t = (np.asarray(kids) - xi)[ok] / diff[ok]
    np.testing.assert_allclose(t, t[:, :1].repeat(5, 1), rtol=1e-3, atol=1e-4)
    assert abs(t[:, 0].std() - ls) < 0.03 and abs(t[:, 0].mean()) < 0.03


def numpy_qdax_es_gradient(half_noise, scores, sigma, parent, l2):
    """QDax's MEESEmitter._es_emitter gradient (qdax/core/emitters/mees_emitter.py), in NumPy."""
    n = scores.shape[0]
    ranks = np.argsort(np.argsort(scores, kind="stable"), kind="stable")
    ranks = ranks / (n - 1) - 0.5
    ranks = ranks.reshape(n // 2, 2)
    ranks = ranks[:, 0] - ranks[:, 1]
    g = -(half_noise * ranks[:, None]).sum(0) / (n * sigma)
    return g + l2 * parent


def test_es_gradient_equals_qdax_formula():
    rng = np.random.default_rng(0)
    eps = rng.normal(size=(50, 7)).astype(np.float32)
    scores = rng.normal(size=100).astype(np.float32)
    parent = rng.normal(size=7).astype(np.float32)
    got = em.es_gradient(jnp.asarray(eps), jnp.asarray(scores), 0.05, jnp.asarray(parent), 0.02)
    np.testing.assert_allclose(np.asarray(got), numpy_qdax_es_gradient(eps, scores, 0.05, parent, 0.02),
                               rtol=1e-5, atol=1e-6)
    r = np.asarray(em.centered_ranks(jnp.asarray(scores)))
    assert r.min() == -0.5 and r.max() == 0.5 and scores[r.argmax()] == scores.max()


def test_knn_novelty_equals_numpy():
    rng = np.random.default_rng(1)
    archive = rng.uniform(size=(30, 2)).astype(np.float32)
    d = rng.uniform(size=(9, 2)).astype(np.float32)
    for count, k in ((30, 5), (3, 5), (12, 1)):
        dist = np.sqrt(((d[:, None] - archive[None, :count]) ** 2).sum(-1))
        ref = np.sort(dist, 1)[:, :min(k, count)].mean(1)
        got = em.knn_novelty(jnp.asarray(d), jnp.asarray(archive), jnp.asarray(count), k)
        np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-5)
    assert float(em.knn_novelty(jnp.asarray(d), jnp.asarray(archive), jnp.asarray(0), 3).max()) == 0.0


def test_es_emitter_climbs_a_smooth_fitness():
    # f(x) = -||x - c||^2, descriptor = first two genes; exploit only: the offspring climbs to c
    dim, c = 8, jnp.linspace(-0.5, 0.5, 8)
    emitter = em.es_emitter(40, steps=1000, mode="exploit", l2=0.0, archive_size=50, clip=None)

    def score(x):
        return -jnp.sum(jnp.square(x - c), -1), jax.nn.sigmoid(x[:, :2])

    rep = rl.init(jnp.zeros(dim), rl.grid_centroids(4, 0.0, 1.0), grid_shape=(4, 4), minval=0.0, maxval=1.0)
    x0 = jnp.full((1, dim), 2.0)
    f0, d0 = score(x0)
    rep = rl.add(rep, x0, d0, f0)
    st = emitter.init(jax.random.key(0), rep, x0, f0, d0)
    hp = HParams(es_sigma=0.05, es_lr=0.05)

    @jax.jit
    def gen(k, rep, st):
        batch, st = emitter.emit(jax.random.fold_in(k, 0), jax.random.fold_in(k, 1), rep, st, hp)
        f, d = score(batch)
        valid = jnp.ones(batch.shape[0], bool)
        rep = rl.add(rep, batch, d, f, valid & jnp.asarray(emitter.insert))
        return rep, emitter.update(st, rep, batch, f, d, valid, hp), f[0]

    fs = []
    for g in range(60):
        rep, st, f = gen(jax.random.key(g + 1), rep, st)
        fs.append(float(f))
    assert emitter.batch_size == 41 and int(st.count) == 60
    assert fs[-1] > 0.1 * float(f0[0])  # from -||2 - c||^2 = -34 to above -3.4 in 60 Adam steps


def test_bad_es_settings_are_refused():
    with pytest.raises(ValueError, match="even"):
        em.es_emitter(5)
    with pytest.raises(ValueError, match="mode"):
        em.es_emitter(4, mode="both")
