"""lfx.qd building blocks against NumPy references and exact identities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.qd import archive as arch
from lfx.qd import budget, metrics, mutation, novelty
from lfx.qd.policy import MLPPolicy


def _numpy_knn_novelty(q, refs, valid, qidx, k):
    out = []
    for i in range(len(q)):
        d = [np.linalg.norm(q[i] - refs[j]) for j in range(len(refs)) if valid[j] and j != qidx[i]]
        d = sorted(d)[:k]
        out.append(np.mean(d) if d else 0.0)
    return np.array(out)


@pytest.mark.parametrize("k,n_valid", [(15, 60), (15, 7), (3, 40)])
def test_knn_novelty_matches_numpy_bruteforce(k, n_valid):
    rng = np.random.default_rng(k + n_valid)
    pop = rng.normal(size=(20, 3)).astype(np.float32)
    arc = rng.normal(size=(50, 3)).astype(np.float32)
    arc_valid = np.zeros(50, bool)
    arc_valid[: max(n_valid - 20, 0)] = True
    pop_valid = np.arange(20) < min(n_valid, 20)
    got = novelty.population_archive_novelty(jnp.asarray(pop), jnp.asarray(arc), jnp.asarray(arc_valid),
                                             jnp.asarray(pop_valid), k=k)
    refs = np.concatenate([pop, arc])
    valid = np.concatenate([pop_valid, arc_valid])
    want = _numpy_knn_novelty(pop, refs, valid, np.arange(20), k)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)


def test_knn_novelty_jit_equals_eager():
    x = jax.random.normal(jax.random.key(0), (10, 2))
    a = novelty.knn_novelty(x, x, None, jnp.arange(10), k=4)
    b = jax.jit(lambda x: novelty.knn_novelty(x, x, None, jnp.arange(10), k=4))(x)
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_archive_ring_buffer_capacity_and_kept_genomes():
    c, d = 5, 3
    a = arch.init_archive(c, d, 2)
    inserted = []
    rng = np.random.default_rng(0)
    for step in range(6):
        g = np.arange(4 * d, dtype=np.float32).reshape(4, d) + 100 * step
        mask = rng.random(4) < 0.7
        a = arch.insert(a, jnp.asarray(g), jnp.asarray(g[:, :2]), jnp.asarray(mask))
        inserted += [row for row, m in zip(g, mask) if m]
        assert int(a.valid.sum()) == min(len(inserted), c) <= c
        assert int(a.count) == len(inserted)
        # The archive holds exactly the min(count, C) most recent insertions.
        kept = {tuple(r) for r in np.asarray(a.genomes)[np.asarray(a.valid)]}
        assert kept == {tuple(r) for r in inserted[-c:]}
        valid = np.asarray(a.valid)
        np.testing.assert_array_equal(np.asarray(a.descriptors)[valid], np.asarray(a.genomes)[valid][:, :2])


def test_archive_extras_follow_genomes():
    a = arch.init_archive(3, 1, 1, extras_example=jnp.zeros((2, 2)))
    g = jnp.arange(4.0)[:, None]
    a = arch.insert(a, g, g, jnp.array([True, False, True, True]),
                    extras=jnp.arange(4.0)[:, None, None] * jnp.ones((4, 2, 2)))
    np.testing.assert_array_equal(np.asarray(a.extras)[:, 0, 0], np.asarray(a.genomes)[:, 0])


def test_archive_rejects_bad_capacity():
    with pytest.raises(ValueError, match="capacity"):
        arch.init_archive(0, 2, 2)


def test_top_k_mask():
    s = jnp.array([0.1, 5.0, 3.0, 4.0, 2.0])
    np.testing.assert_array_equal(arch.top_k_mask(s, 2), [False, True, False, True, False])
    np.testing.assert_array_equal(arch.top_k_mask(s, 2, jnp.array([1, 0, 1, 1, 1], bool)),
                                  [False, False, True, True, False])


def test_evaluation_budget_is_exact_and_never_exceeded():
    rng = np.random.default_rng(1)
    c = budget.init_counter(137)
    req = jax.jit(budget.request, static_argnums=1)
    asked = 0
    for _ in range(40):
        want = jnp.asarray(rng.random(16) < 0.8)
        before = int(c.used)
        c, granted = req(c, 16, want)
        asked += int(want.sum())
        assert int(c.used) == before + int(granted.sum()) <= 137
        assert not bool((granted & ~want).any())
        # granted are the first wanted ones
        w = np.asarray(want)
        g = np.asarray(granted)
        np.testing.assert_array_equal(g, w & (np.cumsum(w) <= 137 - before))
        assert int(c.used) == min(asked, 137)
    assert bool(budget.exhausted(c))


def test_gaussian_mutation_statistics_and_clip():
    g = jnp.zeros((4000, 5))
    mutate = jax.jit(lambda k, g: mutation.gaussian_mutation(k, g, sigma=0.5, mutation_prob=0.9, clip=(-5, 5)))
    out = mutate(jax.random.key(0), g)
    changed = np.asarray((out != 0).any(1))
    assert abs(changed.mean() - 0.9) < 0.02
    assert abs(np.asarray(out)[changed].std() - 0.5) < 0.02
    big = mutation.gaussian_mutation(jax.random.key(1), jnp.full((10, 3), 4.9), sigma=10.0)
    assert float(jnp.abs(big).max()) <= 5.0


def test_mlp_policy_matches_numpy():
    pol = MLPPolicy(3, 2, (4, 5))
    g = jax.jit(pol.init)(jax.random.key(0))
    assert g.shape == (pol.num_params,) == (3 * 4 + 4 + 4 * 5 + 5 + 5 * 2 + 2,)
    x = np.array([0.3, -1.0, 2.0], np.float32)
    gn = np.asarray(g)
    w0, b0 = gn[:12].reshape(3, 4), gn[12:16]
    w1, b1 = gn[16:36].reshape(4, 5), gn[36:41]
    w2, b2 = gn[41:51].reshape(5, 2), gn[51:53]
    want = np.tanh(np.tanh(np.tanh(x @ w0 + b0) @ w1 + b1) @ w2 + b2)
    np.testing.assert_allclose(jax.jit(pol.apply)(g, jnp.asarray(x)), want, rtol=1e-5)


def test_grid_coverage_and_uniformity():
    grid = metrics.init_grid((0, 0), (1, 1), bins=50)
    pts = jnp.array([[0.001, 0.001], [0.999, 0.999], [0.0015, 0.0012], [0.5, 0.5]])
    grid = metrics.add(grid, pts, jnp.array([True, True, True, False]))
    assert float(metrics.coverage(grid)) == pytest.approx(2 / 2500)
    # counts (2, 1) over 2 covered cells vs uniform (1/2, 1/2): numpy JS distance, base 2
    p = np.array([2 / 3, 1 / 3])
    u = np.array([0.5, 0.5])
    m = (p + u) / 2
    js = 0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(u * np.log2(u / m))
    assert float(metrics.uniformity(grid)) == pytest.approx(1 - np.sqrt(js), rel=1e-5)
    even = metrics.add(metrics.init_grid((0, 0), (1, 1)), pts[:2])
    assert float(metrics.uniformity(even)) == pytest.approx(1.0)


def test_areas_found():
    f = metrics.areas_found(jnp.zeros(2, bool), jnp.array([-1, 1, -1]), jnp.array([True, True, True]))
    np.testing.assert_array_equal(f, [False, True])
    f = metrics.areas_found(f, jnp.array([0]), jnp.array([False]))
    np.testing.assert_array_equal(f, [False, True])
