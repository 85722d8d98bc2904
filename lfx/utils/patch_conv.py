"""A VALID, stride-1 2-D convolution written as patch extraction + one matrix product.

    y[..., i, j, o] = b[o] + sum_{di, dj, c} x[..., i + di, j + dj, c] * K[di, dj, c, o]

for i < H - kh + 1, j < W - kw + 1. The kh*kw shifted views of x are concatenated along the channel
axis (order di, dj, c, matching K.reshape(kh*kw*C, O)), so the convolution is
`patches [..., H', W', kh*kw*C] @ K.reshape(kh*kw*C, O)`.

Why not `flax.linen.Conv`: the same function, but when the KERNEL is batched (a population of
agents vmapped over their own parameters, as in LPO/TA-LPO meta-training), vmap turns `lax.conv`
into a grouped convolution, and XLA's CPU grouped/backward convolutions are slow. A matrix product
vmaps into a batched matrix product instead. Measured on 2 CPU cores (MinAtar SpaceInvaders PPO,
2 x 8192 steps, population 2, docs/benchmarks/meta.md): vmapped lifetimes 80.4 s -> 6.8 s, a single
lifetime 20.9 s -> 3.1 s. Parameters ("kernel" [kh, kw, C, O], "bias" [O]) and initialisation
(LeCun normal by default, zero bias) are those of `nn.Conv`, so the two are interchangeable;
`kernel_init` takes any flax initialiser (purejaxql's MinAtar Q-network uses He normal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def patches(x: jax.Array, kh: int, kw: int) -> jax.Array:
    """[..., H, W, C] -> [..., H - kh + 1, W - kw + 1, kh * kw * C] (order di, dj, c)."""
    h, w = x.shape[-3] - kh + 1, x.shape[-2] - kw + 1
    if h < 1 or w < 1:
        raise ValueError(f"input {x.shape[-3:-1]} is smaller than the kernel {(kh, kw)}.")
    return jnp.concatenate(
        [x[..., di : di + h, dj : dj + w, :] for di in range(kh) for dj in range(kw)], axis=-1
    )


class PatchConv(nn.Module):
    """VALID stride-1 convolution with `features` outputs; input [..., H, W, C]."""

    features: int
    kernel_size: Sequence[int] = (3, 3)
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = self.kernel_size
        c = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (kh, kw, c, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return patches(x, kh, kw) @ kernel.reshape(kh * kw * c, self.features) + bias
