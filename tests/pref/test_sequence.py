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


def test_constrained_logits_are_those_of_the_fsm_sampler():
    """fsm_allowed follows the automaton token by token (a Python loop), and the constrained
    log-probabilities renormalise over the allowed tokens: mass on a forbidden token (which the
    sampler never emits) does not lower the log-probability of the sampled ones."""
    from lfx.lm.generate import TokenFSM, fsm_allowed
    from lfx.pref.sequence import constrained_logits

    # 3 states over 6 tokens: state 0 allows 3, 4; state 1 allows 4, 5; state 2 allows 3
    trans = -np.ones((3, 6), np.int32)
    trans[0, 3], trans[0, 4], trans[1, 4], trans[1, 5], trans[2, 3] = 1, 2, 2, 0, 1
    fsm = TokenFSM(jnp.asarray(trans), jnp.int32(0), jnp.zeros((3,), bool))
    tokens = np.array([[3, 4, 3, 2], [4, 3, 5, 0]])  # eos / pad at the end keep the state
    allowed = np.asarray(fsm_allowed(fsm, jnp.asarray(tokens)))
    for b in range(2):
        s = 0
        for t in range(4):
            np.testing.assert_array_equal(allowed[b, t], trans[s] >= 0)
            s = trans[s, tokens[b, t]] if trans[s, tokens[b, t]] >= 0 else s
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 6)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], np.float32)
    c = constrained_logits(jnp.asarray(logits), fsm, jnp.asarray(tokens), jnp.asarray(mask))
    lp = sequence_logps(c, jnp.asarray(tokens), jnp.asarray(mask)).token
    boosted = logits.copy()
    boosted[..., 0] += 20.0  # the forbidden pad token takes almost all the unconstrained mass
    c2 = constrained_logits(jnp.asarray(boosted), fsm, jnp.asarray(tokens), jnp.asarray(mask))
    np.testing.assert_allclose(sequence_logps(c2, jnp.asarray(tokens), jnp.asarray(mask)).token,
                               lp, rtol=1e-5, atol=1e-6)
    z = logits[0, 0][allowed[0, 0]]  # eos only where it is the row's token (t = 3 of row 0)
    np.testing.assert_allclose(lp[0, 0], logits[0, 0, 3] - np.log(np.exp(z).sum()), rtol=1e-5)
    assert np.isfinite(np.asarray(lp)).all()
    assert np.isneginf(np.asarray(c)[0, 0, 2]) and np.isfinite(np.asarray(c)[0, 3, 2])
