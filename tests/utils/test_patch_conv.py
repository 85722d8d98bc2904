"""PatchConv is nn.Conv(VALID, stride 1): same values, same gradients, also with a vmapped kernel."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.utils.patch_conv import PatchConv, patches


def _loop_conv(x, k, b):
    """NumPy loop reference: y[n, i, j, o] = b[o] + sum x[n, i+di, j+dj, c] k[di, dj, c, o]."""
    n, h, w, _ = x.shape
    kh, kw, _, o = k.shape
    y = np.zeros((n, h - kh + 1, w - kw + 1, o))
    for i in range(h - kh + 1):
        for j in range(w - kw + 1):
            y[:, i, j] = np.einsum("nabc,abco->no", x[:, i : i + kh, j : j + kw], k) + b
    return y


@pytest.mark.parametrize("shape,ks", [((3, 10, 10, 4), (3, 3)), ((2, 7, 9, 2), (2, 3))])
def test_matches_loop_and_flax_conv(shape, ks):
    x = jax.random.normal(jax.random.key(0), shape)
    pc = PatchConv(5, ks)
    params = pc.init(jax.random.key(1), x)
    params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.key(2), p.shape), params)
    y = pc.apply(params, x)
    k, b = params["params"]["kernel"], params["params"]["bias"]
    np.testing.assert_allclose(y, _loop_conv(np.asarray(x, np.float64), np.asarray(k), np.asarray(b)),
                               rtol=1e-4, atol=1e-4)
    ref = nn.Conv(5, ks, padding="VALID").apply(params, x)  # same parameter tree as nn.Conv
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


def test_vmapped_kernel_gradients_match_flax_conv():
    pop, x = 3, jax.random.normal(jax.random.key(0), (3, 4, 10, 10, 6))
    params = jax.vmap(lambda k: PatchConv(16).init(k, x[0]))(jax.random.split(jax.random.key(1), pop))

    def loss(module):
        return lambda p, xi: jnp.sum(jnp.tanh(module.apply(p, xi)) * jnp.arange(16.0))

    g1 = jax.vmap(jax.grad(loss(PatchConv(16))))(params, x)
    g2 = jax.vmap(jax.grad(loss(nn.Conv(16, (3, 3), padding="VALID"))))(params, x)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_patch_order_and_errors():
    x = jnp.arange(2 * 4 * 4 * 3.0).reshape(2, 4, 4, 3)
    p = patches(x, 3, 3)
    assert p.shape == (2, 2, 2, 27)
    # channel block (di, dj) of output pixel (i, j) is x[i + di, j + dj]
    np.testing.assert_array_equal(p[1, 1, 0, 3 * (2 * 3 + 1) : 3 * (2 * 3 + 2)], x[1, 3, 1])
    with pytest.raises(ValueError, match="smaller than the kernel"):
        patches(x[:, :2], 3, 3)
