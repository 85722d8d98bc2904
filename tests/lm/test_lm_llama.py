"""lfx.lm.llama: KV cache vs full forward, RoPE layout, attention vs a NumPy loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.lm import (
    KVCache,
    LlamaConfig,
    apply_rope,
    attention,
    init_cache,
    init_params,
    rope_angles,
    tiny_config,
)
from lfx.lm import forward as _forward
from lfx.lm.gguf_loader import permute_rotary, unpermute_rotary

forward = jax.jit(_forward, static_argnums=1)  # one compile per shape instead of eager ops
CFG = tiny_config(40, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=48)


def test_prefill_plus_decode_equals_full_forward():
    params = init_params(jax.random.key(0), CFG)
    tokens = jax.random.randint(jax.random.key(1), (3, 12), 0, CFG.vocab_size)
    full, _ = forward(params, CFG, tokens)
    cache = init_cache(CFG, 3, 16)
    logits, cache = forward(params, CFG, tokens[:, :7], cache=cache)
    chunks = [logits]
    for t in range(7, 12):
        logits, cache = forward(params, CFG, tokens[:, t:t + 1], cache=cache)
        chunks.append(logits)
    assert int(cache.index) == 12
    np.testing.assert_allclose(jnp.concatenate(chunks, 1), full, atol=2e-5, rtol=1e-4)


def test_left_padded_row_with_cache_equals_unpadded_row():
    """A left-padded prompt with shifted positions and a mask gives the unpadded logits."""
    params = init_params(jax.random.key(2), CFG)
    seq = jax.random.randint(jax.random.key(3), (1, 6), 0, CFG.vocab_size)
    ref, _ = forward(params, CFG, seq)
    pad = 4
    tokens = jnp.concatenate([jnp.full((1, pad), 7), seq], 1)
    mask = jnp.arange(pad + 6)[None] >= pad
    pos = jnp.maximum(jnp.arange(pad + 6)[None] - pad, 0)
    cache = init_cache(CFG, 1, 12)
    out, cache = forward(params, CFG, tokens[:, :pad + 3], pos[:, :pad + 3], cache,
                         mask=mask[:, :pad + 3])
    out2, _ = forward(params, CFG, tokens[:, pad + 3:], pos[:, pad + 3:], cache)
    got = jnp.concatenate([out[:, pad:], out2], 1)
    np.testing.assert_allclose(got, ref, atol=2e-5, rtol=1e-4)
    # No-cache path with the same mask agrees too.
    full, _ = forward(params, CFG, tokens, pos, mask=mask)
    np.testing.assert_allclose(full[:, pad:], ref, atol=2e-5, rtol=1e-4)


def test_rope_worked_example():
    """Half-split layout: the pair (x[i], x[i + hd/2]) rotates by angle p * theta^(-2i/hd)."""
    hd, theta, p = 8, 100.0, 3
    x = np.zeros((1, 1, 1, hd), np.float32)
    x[..., 1] = 1.0  # unit vector in pair i = 1 (partner index 1 + 4 = 5)
    cos, sin = rope_angles(jnp.array([[p]]), hd, theta)
    y = np.asarray(apply_rope(jnp.asarray(x), cos, sin))[0, 0, 0]
    angle = p * theta ** (-2 * 1 / hd)  # = 3 / 10
    expected = np.zeros(hd, np.float32)
    expected[1], expected[5] = np.cos(angle), np.sin(angle)
    np.testing.assert_allclose(y, expected, atol=1e-6)


def _rope_adjacent_numpy(x, p, theta):
    """llama.cpp's layout: pair (x[2i], x[2i+1]) rotates by p * theta^(-2i/hd)."""
    hd = x.shape[-1]
    y = x.copy()
    for i in range(hd // 2):
        a = p * theta ** (-2 * i / hd)
        c, s = np.cos(a), np.sin(a)
        y[..., 2 * i] = x[..., 2 * i] * c - x[..., 2 * i + 1] * s
        y[..., 2 * i + 1] = x[..., 2 * i + 1] * c + x[..., 2 * i] * s
    return y


def test_gguf_rotary_permutation_maps_adjacent_pairs_to_half_split():
    """Adjacent-pair RoPE on GGUF-permuted weights == half-split RoPE on unpermuted weights,
    up to the same row permutation; so scores q.k agree exactly."""
    rng = np.random.default_rng(0)
    n_heads, hd, d_in, theta, p = 3, 8, 5, 1000.0, 7
    w_hf = rng.normal(size=(n_heads * hd, d_in)).astype(np.float32)
    w_gguf = permute_rotary(w_hf, n_heads)
    np.testing.assert_array_equal(unpermute_rotary(w_gguf, n_heads), w_hf)
    # Row 2i+s of a head in GGUF is row s*hd/2 + i of the Hugging Face head.
    np.testing.assert_array_equal(w_gguf[2 * 1 + 1], w_hf[hd // 2 + 1])
    x = rng.normal(size=(d_in,)).astype(np.float32)
    q_hf = (w_hf @ x).reshape(1, 1, n_heads, hd)
    q_gguf = (w_gguf @ x).reshape(n_heads, hd)
    cos, sin = rope_angles(jnp.array([[p]]), hd, theta)
    ours = np.asarray(apply_rope(jnp.asarray(q_hf), cos, sin))[0, 0]
    theirs = _rope_adjacent_numpy(q_gguf, p, theta)
    np.testing.assert_allclose(unpermute_rotary(theirs.reshape(-1, 1), n_heads).reshape(
        n_heads, hd), ours, atol=1e-5)


def test_gqa_attention_matches_numpy_loop():
    rng = np.random.default_rng(1)
    B, T, S, H, Hkv, hd = 2, 3, 5, 6, 2, 4
    q = rng.normal(size=(B, T, H, hd)).astype(np.float32)
    k = rng.normal(size=(B, S, Hkv, hd)).astype(np.float32)
    v = rng.normal(size=(B, S, Hkv, hd)).astype(np.float32)
    mask = rng.random((B, T, S)) < 0.7
    mask[..., 0] = True
    got = np.asarray(attention(q, k, v, jnp.asarray(mask)))
    ref = np.zeros_like(got)
    for b in range(B):
        for t in range(T):
            for h in range(H):
                kv = h // (H // Hkv)
                s = np.array([q[b, t, h] @ k[b, j, kv] / np.sqrt(hd) if mask[b, t, j]
                              else -np.inf for j in range(S)])
                w = np.exp(s - s.max())
                w /= w.sum()
                ref[b, t, h] = w @ v[b, :, kv]
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_invalid_config_raises():
    with pytest.raises(ValueError, match="multiple of"):
        LlamaConfig(vocab_size=10, dim=8, n_layers=1, n_heads=3, n_kv_heads=2, head_dim=4,
                    hidden_dim=8)
    with pytest.raises(ValueError, match="even"):
        LlamaConfig(vocab_size=10, dim=8, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=3,
                    hidden_dim=8)


def test_cache_is_a_pytree():
    cache = init_cache(CFG, 2, 4)
    assert isinstance(jax.tree.map(lambda x: x, cache), KVCache)
