"""lfx.qd.repertoire: insertion against a NumPy MAP-Elites loop, centroids, metrics, QDax's repertoire.

The QDax oracle test runs where qdax imports (the peer venv):
    PYTHONPATH=. /opt/peers/qdax/bin/python -m pytest -q -p no:xdist tests/qd/test_qd_repertoire.py -k qdax
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.qd import repertoire as rl


def numpy_insert(centroids, genotypes, fitnesses, descriptors, batch_g, batch_d, batch_f, valid=None):
    """The MAP-Elites loop: each child in batch order goes to its nearest centroid and replaces the
    elite when strictly fitter (so the first of equal children wins, and an equal child never
    replaces the incumbent)."""
    g, f, d = genotypes.copy(), fitnesses.copy(), descriptors.copy()
    for b in range(len(batch_f)):
        if valid is not None and not valid[b]:
            continue
        c = int(np.argmin(((batch_d[b] - centroids) ** 2).sum(-1)))
        if batch_f[b] > f[c]:
            g[c], f[c], d[c] = batch_g[b], batch_f[b], batch_d[b]
    return g, f, d


def _batches(seed, n_batches, n, dim, lo=0.0, hi=1.0, ties=True):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        d = rng.uniform(lo, hi, (n, 2)).astype(np.float32)
        f = rng.normal(size=n).astype(np.float32)
        if ties:
            f = np.round(f, 0)  # many equal fitnesses, in the same cells too
        out.append((rng.normal(size=(n, dim)).astype(np.float32), d, f, rng.uniform(size=n) < 0.8))
    return out


def _check_against_numpy(rep, batches, use_valid=True):
    c = np.asarray(rep.centroids)
    g_np = np.zeros((c.shape[0],) + np.asarray(rep.genotypes).shape[1:], np.float32)
    f_np = np.full(c.shape[0], -np.inf, np.float32)
    d_np = np.zeros_like(c)
    add = jax.jit(rl.add)
    for bg, bd, bf, valid in batches:
        v = valid if use_valid else None
        rep = add(rep, jnp.asarray(bg), jnp.asarray(bd), jnp.asarray(bf), None if v is None else jnp.asarray(v))
        g_np, f_np, d_np = numpy_insert(c, g_np, f_np, d_np, bg, bd, bf, v)
        np.testing.assert_array_equal(np.asarray(rep.fitnesses), f_np)
        np.testing.assert_array_equal(np.asarray(rep.genotypes), g_np)
        np.testing.assert_array_equal(np.asarray(rep.descriptors), d_np)
    return rep


def test_cvt_insertion_equals_the_numpy_loop():
    cent = rl.cvt_centroids(jax.random.key(3), 300, 0.0, 1.0, 2000, num_iterations=5)
    rep = rl.init(jnp.zeros(3), cent)
    rep = _check_against_numpy(rep, _batches(0, 6, 64, 3))
    assert 0 < float(rl.coverage(rep)) < 1


def test_grid_insertion_equals_the_numpy_loop_over_nearest_centres():
    lo, hi = (-1.0, 0.0), (1.0, 2.0)
    shape = (7, 5)
    rep = rl.init(jnp.zeros(2), rl.grid_centroids(shape, lo, hi), grid_shape=shape, minval=lo, maxval=hi)
    # the grid's floor lookup must find the nearest centre, also for points outside the box
    batches = [(g, d * np.float32([2.6, 2.6]) + np.float32([-1.3, -0.3]), f, v)
               for g, d, f, v in _batches(1, 5, 80, 2)]
    _check_against_numpy(rep, batches, use_valid=False)


def test_grid_lookup_equals_nearest_centroid_and_lfx_grid_cells():
    from lfx.qd import metrics

    lo, hi, b = (-1.35, -1.35), (1.35, 1.35), 50
    rep = rl.init(jnp.zeros(1), rl.grid_centroids(b, lo, hi), grid_shape=(b, b), minval=lo, maxval=hi)
    d = jax.random.uniform(jax.random.key(0), (4000, 2), minval=-1.6, maxval=1.6)
    fast = rl.cell_indices(rep, d)
    nearest = rl._nearest(d, rep.centroids)
    np.testing.assert_array_equal(np.asarray(fast), np.asarray(nearest))
    cell = metrics.cell_index(metrics.init_grid(lo, hi, b), d)  # the visit grid's flat order
    np.testing.assert_array_equal(np.asarray(fast), np.asarray(cell[:, 0] * b + cell[:, 1]))


def test_lloyd_step_equals_numpy_and_cvt_is_a_near_fixed_point():
    x = jax.random.uniform(jax.random.key(1), (3000, 2))
    c0 = x[:25]
    lloyd = jax.jit(rl.lloyd_step)
    c1 = lloyd(x, c0)
    xn, cn = np.asarray(x), np.asarray(c0)
    near = ((xn[:, None] - cn[None]) ** 2).sum(-1).argmin(1)
    ref = np.stack([xn[near == k].mean(0) if (near == k).any() else cn[k] for k in range(25)])
    np.testing.assert_allclose(np.asarray(c1), ref, rtol=1e-5, atol=1e-6)

    lo, hi = np.array([-2.0, 0.0]), np.array([2.0, 1.0])
    c = np.asarray(rl.cvt_centroids(jax.random.key(2), 25, lo, hi, 5000, num_iterations=40))
    assert c.shape == (25, 2) and (c >= lo).all() and (c <= hi).all()
    u = np.asarray(jax.random.uniform(jax.random.key(2), (5000, 2)))  # the samples, in the unit box
    cu = (c - lo) / (hi - lo)
    moved = np.abs(np.asarray(lloyd(jnp.asarray(u), jnp.asarray(cu, jnp.float32))) - cu).max()
    assert moved < 5e-3

    def energy(cc):
        return (((u[:, None] - cc[None]) ** 2).sum(-1).min(1)).mean()

    assert energy(cu) < 0.7 * energy(u[:25])  # Lloyd lowers the k-means objective a lot


def test_qd_metrics_identities():
    cent = rl.grid_centroids(4, 0.0, 1.0)
    rep = rl.init(jnp.zeros(2), cent)
    assert float(rl.qd_score(rep, 3.0)) == 0 and float(rl.coverage(rep)) == 0
    assert float(rl.max_fitness(rep)) == -np.inf
    d = jnp.asarray([[0.1, 0.1], [0.12, 0.13], [0.9, 0.9], [0.6, 0.1]])
    f = jnp.asarray([-0.5, -0.2, -0.3, -1.0])
    rep = rl.add(rep, jnp.zeros((4, 2)), d, f)
    # cells: (0,0) keeps -0.2, (3,3) -0.3, (2,0) -1.0
    assert float(rl.coverage(rep)) == 3 / 16
    np.testing.assert_allclose(float(rl.qd_score(rep, 0.0)), -1.5, rtol=1e-6)
    np.testing.assert_allclose(float(rl.qd_score(rep, 1.0)), -1.5 + 3.0, rtol=1e-6)
    assert float(rl.max_fitness(rep)) == pytest.approx(-0.2)
    m = rl.metrics(rep, 1.0)
    assert set(m) == {"me/qd_score", "me/coverage", "me/max_fitness"}
    # adding never lowers a cell: qd_score with a non-negative offset never falls
    rep2 = rl.add(rep, jnp.zeros((4, 2)), d, f - 5.0)
    np.testing.assert_array_equal(np.asarray(rep2.fitnesses), np.asarray(rep.fitnesses))


def test_bad_centroid_arguments_are_refused():
    with pytest.raises(ValueError, match="maxval"):
        rl.grid_centroids(4, 1.0, 0.0)
    with pytest.raises(ValueError, match="num_samples"):
        rl.cvt_centroids(jax.random.key(0), 100, 0.0, 1.0, 50)
    with pytest.raises(ValueError, match="grid_shape"):
        rl.init(jnp.zeros(2), rl.grid_centroids(4, 0.0, 1.0), grid_shape=(4, 5), minval=0.0, maxval=1.0)


def test_same_inputs_give_qdax_repertoire_and_qd_score():
    pytest.importorskip("qdax")
    from qdax.core.containers.mapelites_repertoire import MapElitesRepertoire, compute_euclidean_centroids
    from qdax.utils.metrics import default_qd_metrics

    for centroids in (rl.cvt_centroids(jax.random.key(5), 64, 0.0, 1.0, 4000, num_iterations=10),
                      compute_euclidean_centroids((8, 8), 0.0, 1.0)):
        rep = rl.init(jnp.zeros(5), centroids)
        batches = _batches(7, 5, 100, 5, ties=False)  # QDax leaves the winner among ties to the scatter
        bg, bd, bf, _ = batches[0]
        q = MapElitesRepertoire.init(jnp.asarray(bg), jnp.asarray(bf), jnp.asarray(bd), jnp.asarray(centroids))
        rep = rl.add(rep, jnp.asarray(bg), jnp.asarray(bd), jnp.asarray(bf))
        for bg, bd, bf, _ in batches[1:]:
            q = q.add(jnp.asarray(bg), jnp.asarray(bd), jnp.asarray(bf))
            rep = rl.add(rep, jnp.asarray(bg), jnp.asarray(bd), jnp.asarray(bf))
        np.testing.assert_array_equal(np.asarray(rep.fitnesses), np.asarray(q.fitnesses).reshape(-1))
        np.testing.assert_array_equal(np.asarray(rep.genotypes), np.asarray(q.genotypes))
        np.testing.assert_array_equal(np.asarray(rep.descriptors), np.asarray(q.descriptors))
        for offset in (0.0, 4.0):
            qm = default_qd_metrics(q, offset)
            np.testing.assert_allclose(float(rl.qd_score(rep, offset)), float(qm["qd_score"]), rtol=1e-6)
            np.testing.assert_allclose(100 * float(rl.coverage(rep)), float(qm["coverage"]), rtol=1e-6)
            assert float(rl.max_fitness(rep)) == float(qm["max_fitness"])
