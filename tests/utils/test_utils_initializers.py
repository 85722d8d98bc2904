"""The LAPACK-free orthogonal initializer: orthogonal, scaled, Haar-like, and QR-free under vmap."""

import flax.linen as nn
import jax
import numpy as np
import pytest

from lfx.utils.initializers import orthogonal


@pytest.mark.parametrize("shape", [(64, 64), (4, 64), (256, 8), (3, 3, 16, 16)])
def test_columns_or_rows_are_orthonormal_times_scale(shape):
    w = np.asarray(orthogonal(2.0)(jax.random.key(0), shape)).reshape(-1, shape[-1])
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(gram.shape[0]), atol=2e-4)


def test_entries_have_the_haar_moments():
    # For a Haar-random n x n orthogonal matrix, entries have mean 0 and variance 1/n, and the
    # trace has mean 0 and variance 1 (Diaconis & Shahshahani 1994).
    n = 32
    ws = jax.vmap(lambda k: orthogonal()(k, (n, n)))(jax.random.split(jax.random.key(1), 400))
    ws = np.asarray(ws)
    assert abs(ws.mean()) < 0.01
    assert ws.var() == pytest.approx(1.0 / n, rel=0.02)
    traces = np.trace(ws, axis1=1, axis2=2)
    assert abs(traces.mean()) < 0.15
    assert traces.var() == pytest.approx(1.0, rel=0.2)


def test_vmapped_init_uses_no_lapack_call():
    closed = jax.make_jaxpr(jax.vmap(lambda k: orthogonal()(k, (16, 16))))(jax.random.split(jax.random.key(0), 4))

    def primitives(jaxpr):
        for eqn in jaxpr.eqns:
            yield eqn.primitive.name
            for p in eqn.params.values():
                if hasattr(p, "jaxpr"):  # scan / pjit bodies (ClosedJaxpr)
                    yield from primitives(p.jaxpr)

    names = set(primitives(closed.jaxpr))
    assert "dot_general" in names
    assert not names & {"qr", "householder_product", "geqrf", "orgqr", "eigh", "svd"}, names
    # The flax initializer does take a QR: this is what the test guards against.
    flax_jaxpr = jax.make_jaxpr(lambda k: nn.initializers.orthogonal()(k, (16, 16)))(jax.random.key(0))
    assert set(primitives(flax_jaxpr.jaxpr)) & {"qr", "householder_product", "geqrf", "orgqr"}
