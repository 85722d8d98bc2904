"""The Llama decoder as pure functions: RMSNorm, RoPE, grouped-query attention, SwiGLU, KV cache.

Touvron et al. 2023, "LLaMA: Open and Efficient Foundation Language Models", arXiv:2302.13971;
rotary embeddings: Su et al. 2021, "RoFormer", arXiv:2104.09864; grouped-query attention:
Ainslie et al. 2023, "GQA", arXiv:2305.13245; SwiGLU: Shazeer 2020, arXiv:2002.05202.

Parameters are a dict pytree; per-layer weights are stacked on a leading layer axis [L, ...] so the
decoder is one `lax.scan` (compile time independent of depth). Linear weights are stored [in, out]
(`x @ w`). Rotary embeddings use the half-split layout of Hugging Face / Meta checkpoints: the
pair rotated together is (x[i], x[i + hd/2]). The compute dtype is the dtype of the parameters
(cast with `cast_params`); norms, attention logits and softmax are computed in float32.
"""

from __future__ import annotations

import math

import flax
import jax
import jax.numpy as jnp

from lfx.lm.config import LlamaConfig

_NEG_INF = -1e30


@flax.struct.dataclass
class KVCache:
    """Keys and values of every layer for `S` slots, shared write index.

    Attributes:
      k: [L, B, S, Hkv, hd] rotated keys.
      v: [L, B, S, Hkv, hd] values.
      valid: [B, S] bool, slot holds a real (non-padding) token.
      index: int32 scalar, next slot to write (the same for every row; rows of different lengths
        are left-padded, see `generate`).
    """

    k: jax.Array
    v: jax.Array
    valid: jax.Array
    index: jax.Array


def init_cache(config: LlamaConfig, batch_size: int, max_len: int, dtype=jnp.float32) -> KVCache:
    """An empty cache of `max_len` slots for `batch_size` rows."""
    shape = (config.n_layers, batch_size, max_len, config.n_kv_heads, config.head_dim)
    return KVCache(k=jnp.zeros(shape, dtype), v=jnp.zeros(shape, dtype),
                   valid=jnp.zeros((batch_size, max_len), bool),
                   index=jnp.zeros((), jnp.int32))


def init_params(key: jax.Array, config: LlamaConfig, dtype=jnp.float32) -> dict:
    """Random parameters: N(0, 0.02) embeddings, N(0, 1/fan_in) linear layers, unit norms.

    Returns:
      {"embed": [V, D], "final_norm": [D], "layers": {name: [L, ...]}} and "lm_head" [D, V] when
      the embeddings are not tied.
    """
    c = config
    keys = jax.random.split(key, 9)
    L, D, F = c.n_layers, c.dim, c.hidden_dim
    q_dim, kv_dim = c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim

    def dense(k, fan_in, fan_out):
        return jax.random.normal(k, (L, fan_in, fan_out), dtype) / math.sqrt(fan_in)

    params = {
        "embed": 0.02 * jax.random.normal(keys[0], (c.vocab_size, D), dtype),
        "final_norm": jnp.ones((D,), dtype),
        "layers": {
            "attn_norm": jnp.ones((L, D), dtype),
            "wq": dense(keys[1], D, q_dim),
            "wk": dense(keys[2], D, kv_dim),
            "wv": dense(keys[3], D, kv_dim),
            "wo": dense(keys[4], q_dim, D),
            "ffn_norm": jnp.ones((L, D), dtype),
            "w_gate": dense(keys[5], D, F),
            "w_up": dense(keys[6], D, F),
            "w_down": dense(keys[7], F, D),
        },
    }
    if not c.tie_embeddings:
        params["lm_head"] = jax.random.normal(keys[8], (D, c.vocab_size), dtype) / math.sqrt(D)
    return params


def cast_params(params: dict, dtype) -> dict:
    """Casts every floating parameter to `dtype` (e.g. jnp.bfloat16 for a lighter decode step)."""
    return jax.tree.map(lambda x: x.astype(dtype), params)


def rms_norm(x: jax.Array, weight: jax.Array, eps: float) -> jax.Array:
    """RMSNorm (Zhang & Sennrich 2019, arXiv:1910.07467): w * x / sqrt(mean(x^2) + eps).

    Args:
      x: [..., D]; weight: [D]. Computed in float32, returned in x's dtype.
    """
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + eps)
    return (y * weight.astype(jnp.float32)).astype(x.dtype)


def rope_angles(positions: jax.Array, head_dim: int, theta: float) -> tuple[jax.Array, jax.Array]:
    """cos and sin of the rotary angles p * theta^(-2i/hd), i < hd/2.

    Args:
      positions: [B, T] integer positions. Returns two [B, T, hd/2] float32 arrays.
    """
    inv_freq = theta ** (-jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim)
    angles = positions.astype(jnp.float32)[..., None] * inv_freq
    return jnp.cos(angles), jnp.sin(angles)


def apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """Rotates pairs (x[i], x[i + hd/2]) by the angle of frequency i (half-split layout).

    y[i] = x[i] cos - x[i + hd/2] sin,  y[i + hd/2] = x[i + hd/2] cos + x[i] sin.

    Args:
      x: [B, T, heads, hd]; cos, sin: [B, T, hd/2].
    """
    half = x.shape[-1] // 2
    x32 = x.astype(jnp.float32)
    x1, x2 = x32[..., :half], x32[..., half:]
    c, s = cos[:, :, None, :], sin[:, :, None, :]
    return jnp.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1).astype(x.dtype)


def attention(q: jax.Array, k, v, mask: jax.Array) -> jax.Array:
    """Grouped-query softmax attention, softmax(q k^T / sqrt(hd) + mask) v.

    Args:
      q: [B, T, H, hd].
      k, v: [B, S, Hkv, hd], or equal-length sequences of such arrays [B, S_i, Hkv, hd] that
        are attended to as if concatenated along S (the KV cache and the new tokens: scores are
        concatenated instead of keys, so the cache is never copied).
      mask: [B, T, sum S_i] bool (True = may attend).
    Returns:
      [B, T, H, hd].
    """
    ks = list(k) if isinstance(k, (list, tuple)) else [k]
    vs = list(v) if isinstance(v, (list, tuple)) else [v]
    B, T, H, hd = q.shape
    hkv = ks[0].shape[2]
    q = q.reshape(B, T, hkv, H // hkv, hd)
    scores = jnp.concatenate(
        [jnp.einsum("btkgd,bskd->bkgts", q, ki, preferred_element_type=jnp.float32)
         for ki in ks], axis=-1) / math.sqrt(hd)
    scores = jnp.where(mask[:, None, None, :, :], scores, _NEG_INF)
    probs = jax.nn.softmax(scores, axis=-1)
    out, start = 0.0, 0
    for vi in vs:
        n = vi.shape[1]
        p = probs[..., start:start + n].astype(vi.dtype)
        out = out + jnp.einsum("bkgts,bskd->btkgd", p, vi, preferred_element_type=jnp.float32)
        start += n
    return out.astype(vs[0].dtype).reshape(B, T, H, hd)


def _block(config: LlamaConfig, h, layer, cos, sin, kv_fn):
    """One pre-norm decoder block.

    `kv_fn(k, v) -> (keys, values, mask, extra)` turns the block's new rotated keys/values
    [B, T, Hkv, hd] into the attended context (see `attention`); `extra` is returned as is.
    """
    c = config
    B, T, _ = h.shape
    x = rms_norm(h, layer["attn_norm"], c.norm_eps)
    q = (x @ layer["wq"]).reshape(B, T, c.n_heads, c.head_dim)
    k = (x @ layer["wk"]).reshape(B, T, c.n_kv_heads, c.head_dim)
    v = (x @ layer["wv"]).reshape(B, T, c.n_kv_heads, c.head_dim)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    keys, values, mask, extra = kv_fn(k, v)
    a = attention(q, keys, values, mask).reshape(B, T, c.n_heads * c.head_dim)
    h = h + a @ layer["wo"]
    x = rms_norm(h, layer["ffn_norm"], c.norm_eps)
    h = h + (jax.nn.silu(x @ layer["w_gate"]) * (x @ layer["w_up"])) @ layer["w_down"]
    return h, extra


def output_logits(params: dict, config: LlamaConfig, h: jax.Array) -> jax.Array:
    """Final RMSNorm and projection to the vocabulary: [B, T, D] -> float32 [B, T, V]."""
    x = rms_norm(h, params["final_norm"], config.norm_eps)
    if config.tie_embeddings:
        return jnp.einsum("btd,vd->btv", x, params["embed"], preferred_element_type=jnp.float32)
    return jnp.einsum("btd,dv->btv", x, params["lm_head"], preferred_element_type=jnp.float32)


def forward_hidden(params: dict, config: LlamaConfig, tokens: jax.Array,
                   positions: jax.Array | None = None, cache: KVCache | None = None, *,
                   mask: jax.Array | None = None) -> tuple[jax.Array, KVCache | None]:
    """Final hidden states [B, T, D] (before the output norm) and the new cache; see `forward`."""
    B, T = tokens.shape
    if mask is None:
        mask = jnp.ones((B, T), bool)
    if positions is None:
        start = 0 if cache is None else cache.index
        positions = jnp.broadcast_to(start + jnp.arange(T, dtype=jnp.int32), (B, T))
    cos, sin = rope_angles(positions, config.head_dim, config.rope_theta)
    h = params["embed"][tokens]
    layers = params["layers"]

    if cache is None:
        causal = jnp.tril(jnp.ones((T, T), bool))
        full_mask = causal[None] & mask[:, None, :]

        def body(h, layer):
            h, _ = _block(config, h, layer, cos, sin, lambda k, v: (k, v, full_mask, None))
            return h, None

        h, _ = jax.lax.scan(body, h, layers)
        new_cache = None
    else:
        # The scan reads each layer's cached keys/values (read-only) and returns only the T new
        # ones; they are written into the cache once, after the scan, with one in-place
        # dynamic_update_slice (writing inside the scan made XLA copy the whole cache per layer).
        S = cache.k.shape[2]
        idx = cache.index
        slot = jnp.arange(S)
        past = (slot < idx)[None, :] & cache.valid
        causal = jnp.tril(jnp.ones((T, T), bool))
        full_mask = jnp.concatenate(
            [jnp.broadcast_to(past[:, None, :], (B, T, S)), causal[None] & mask[:, None, :]],
            axis=-1)

        def body(h, xs):
            layer, ck, cv = xs

            def kv_fn(k, v):
                return ((ck, k.astype(ck.dtype)), (cv, v.astype(cv.dtype)), full_mask, (k, v))

            h, kv = _block(config, h, layer, cos, sin, kv_fn)
            return h, kv

        h, (k_new, v_new) = jax.lax.scan(body, h, (layers, cache.k, cache.v))
        zero = jnp.zeros((), jnp.int32)
        at = (zero, zero, idx, zero, zero)
        new_cache = KVCache(
            k=jax.lax.dynamic_update_slice(cache.k, k_new.astype(cache.k.dtype), at),
            v=jax.lax.dynamic_update_slice(cache.v, v_new.astype(cache.v.dtype), at),
            valid=jax.lax.dynamic_update_slice(cache.valid, mask, (0, idx)),
            index=idx + T)

    return h, new_cache


def forward(params: dict, config: LlamaConfig, tokens: jax.Array,
            positions: jax.Array | None = None, cache: KVCache | None = None, *,
            mask: jax.Array | None = None) -> tuple[jax.Array, KVCache | None]:
    """Logits of a causal Llama decoder, optionally reading and extending a KV cache.

    Without a cache, token t attends to tokens s <= t with mask[s]. With a cache, the T new
    tokens are written to slots index..index+T-1 and attend to every earlier valid slot and to
    themselves causally; the returned cache has index += T. Both paths give the same logits for
    the same sequence (tested).

    Args:
      params: see `init_params`.
      config: static shapes.
      tokens: [B, T] int32 token ids.
      positions: [B, T] int32 rotary positions; default arange(T) (offset by cache.index when a
        cache is given). Left-padded rows pass their own positions (0 at the first real token).
      cache: a `KVCache` from `init_cache`, or None.
      mask: [B, T] bool, False for padding tokens (never attended to); default all True.
    Returns:
      (logits [B, T, V] float32, new cache or None).
    """
    h, cache = forward_hidden(params, config, tokens, positions, cache, mask=mask)
    return output_logits(params, config, h), cache
