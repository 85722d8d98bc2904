"""Small trainable LM: next-token training reduces the loss; LoRA with B = 0 is the base model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.lm import CharTokenizer, finetune_lora, init_params, lora_apply, lora_init, tiny_config, train_lm
from lfx.lm import forward as _forward
from lfx.lm import lm_loss as _lm_loss

# Jitted once per shape (eager op-by-op dispatch of the scanned decoder is slow on CPU).
forward = jax.jit(_forward, static_argnums=1)
lm_loss = jax.jit(_lm_loss, static_argnums=1)


def _corpus(tok, rng, n_batches=4, batch=8, width=24):
    """Lines like 'x 3 5 7 9 11' (arithmetic progressions), right-padded with pad_id."""
    rows = []
    for _ in range(n_batches * batch):
        a, d = rng.integers(0, 5), rng.integers(1, 4)
        text = "x " + " ".join(str(a + d * k) for k in range(5))
        ids = [tok.bos_id] + tok.encode(text) + [tok.eos_id]
        rows.append(ids + [tok.pad_id] * (width - len(ids)))
    return np.array(rows, np.int32).reshape(n_batches, batch, width)


def test_train_lm_reduces_masked_loss_on_tiny_corpus():
    tok = CharTokenizer()
    cfg = tiny_config(tok.vocab_size, dim=48, n_layers=2, n_heads=4, n_kv_heads=2,
                      hidden_dim=96)
    data = _corpus(tok, np.random.default_rng(0))
    params = init_params(jax.random.key(0), cfg)
    mask = data != tok.pad_id
    flat, flat_mask = data.reshape(-1, data.shape[-1]), mask.reshape(-1, data.shape[-1])
    before = float(lm_loss(params, cfg, flat, flat_mask)[0])
    trained, losses = train_lm(params, cfg, data, lr=3e-3, num_steps=150, key=jax.random.key(1),
                               return_losses=True)
    after = float(lm_loss(trained, cfg, flat, flat_mask)[0])
    # Uniform over the vocabulary is log(V) ~ 3.8; the corpus has ~1.2 nats/char of entropy left
    # at most (the start and step of each line), so learning the format takes it well below 2.
    assert before > 3.0
    assert after < 0.5 * before and after < 1.6, (before, after)
    assert losses.shape == (150,)


def test_lm_loss_ignores_masked_targets():
    cfg = tiny_config(20, dim=16, n_layers=1, n_heads=2, n_kv_heads=1, hidden_dim=32)
    params = init_params(jax.random.key(0), cfg)
    tokens = jnp.array([[1, 5, 6, 7, 0, 0]])
    mask = tokens != 0
    loss, _ = lm_loss(params, cfg, tokens, mask)
    logits, _ = forward(params, cfg, tokens[:, :-1])
    logp = jax.nn.log_softmax(logits[0], -1)
    ref = -np.mean([logp[0, 5], logp[1, 6], logp[2, 7]])
    np.testing.assert_allclose(loss, ref, rtol=1e-5)


def test_lora_with_zero_b_equals_base_model_and_training_moves_it():
    cfg = tiny_config(30, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=48)
    params = init_params(jax.random.key(0), cfg)
    lora = lora_init(jax.random.key(1), params, rank=4, targets=("wq", "wv", "w_down"))
    tokens = jax.random.randint(jax.random.key(2), (4, 10), 3, cfg.vocab_size)
    base, _ = forward(params, cfg, tokens)
    merged, _ = forward(lora_apply(params, lora, scale=2.0), cfg, tokens)
    np.testing.assert_array_equal(np.asarray(base), np.asarray(merged))
    # A deterministic cyclic sequence the random base model does not know. The embeddings are
    # scaled up: with N(0, 0.02) tied embeddings the frozen output layer cannot express
    # confident predictions whatever the adapters do.
    params = {**params, "embed": params["embed"] * 30.0}
    cyclic = (jnp.arange(12)[None, :] * 7 + jnp.arange(4)[:, None] * 3) % 11 + 3
    trained, losses = finetune_lora(params, cfg, lora, cyclic, lr=3e-2, num_steps=40,
                                    key=jax.random.key(3), return_losses=True)
    assert float(losses[-5:].mean()) < 0.5 * float(losses[:5].mean()), losses
    # Only the adapters change; A and B both moved, shapes kept.
    for name in lora:
        assert trained[name]["b"].shape == lora[name]["b"].shape
        assert float(jnp.abs(trained[name]["b"]).max()) > 0
    with pytest.raises(ValueError, match="Unknown LoRA targets"):
        lora_init(jax.random.key(0), params, rank=2, targets=("nope",))
