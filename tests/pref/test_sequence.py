"""Sequence log-probs: a NumPy reference, the forward pass they come from, padding invariance."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.lm import forward, init_params, tiny_config
from lfx.lm.train import PROMPT, TARGET
from lfx.pref.sequence import response_logps, sequence_logps


def test_sequence_logps_matches_numpy_log_softmax_sums():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 7)).astype(np.float32) * 3
    labels = rng.integers(7, size=(3, 5))
    mask = rng.random((3, 5)) < 0.6
    mask[2] = False  # an empty response: mean is 0, not NaN
    out = sequence_logps(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(mask))
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    tok = np.take_along_axis(logp, labels[..., None], -1)[..., 0] * mask
    np.testing.assert_allclose(out.sum, tok.sum(-1), rtol=1e-5)
    np.testing.assert_allclose(out.count, mask.sum(-1))
    np.testing.assert_allclose(out.mean, tok.sum(-1) / np.maximum(mask.sum(-1), 1), rtol=1e-5)
    assert out.mean[2] == 0.0


def test_sequence_logps_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="must agree"):
        sequence_logps(jnp.zeros((2, 4, 3)), jnp.zeros((2, 5), int), jnp.ones((2, 5)))


def test_response_logps_equal_the_full_forward_and_ignore_left_padding():
    cfg = tiny_config(11, dim=16, n_layers=1, n_heads=2, n_kv_heads=1, hidden_dim=32)
    params = init_params(jax.random.key(0), cfg)
    prompt, response = [3, 4, 5], [6, 7, 8, 9]
    seq = np.array([prompt + response], np.int32)
    logits, _ = forward(params, cfg, jnp.asarray(seq[:, :-1]))
    logp = jax.nn.log_softmax(logits, -1)[0]
    expect = sum(float(logp[len(prompt) - 1 + i, t]) for i, t in enumerate(response))
    # the same row left-padded by 3 (pad id 0), and a second row with a shorter response
    padded = np.array([[0, 0, 0] + prompt + response, [0, 0, 0, 0] + prompt + response[1:]],
                      np.int32)
    roles = np.array([[0] * 3 + [PROMPT] * 3 + [TARGET] * 4,
                      [0] * 4 + [PROMPT] * 3 + [TARGET] * 3], np.int32)
    out = response_logps(params, cfg, jnp.asarray(padded), jnp.asarray(roles), num_target=4)
    np.testing.assert_allclose(out.sum[0], expect, rtol=1e-5)
    np.testing.assert_array_equal(out.count, [4, 3])
    assert out.token.shape == (2, 4) and out.token[1, 0] == 0.0
