"""Tokenizers: the GPT-2 pre-tokenizer against the `regex` engine, CharTokenizer round trip."""

import numpy as np
import pytest

from lfx.lm import CharTokenizer
from lfx.lm.tokenizer import BPETokenizer, gpt2_pretokenize, smollm_pretokenize

GPT2_PATTERN = (r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def test_pretokenizer_matches_regex_engine_on_random_strings():
    regex = pytest.importorskip("regex")
    pattern = regex.compile(GPT2_PATTERN)
    alphabet = list("ab Z9'\n\t.-,:!é😀 ") + ["'s", "'ll", "  ", "\u3000", "\x1c", "٣"]
    rng = np.random.default_rng(0)
    for _ in range(2000):
        text = "".join(rng.choice(alphabet, size=rng.integers(0, 14)))
        assert gpt2_pretokenize(text) == pattern.findall(text), repr(text)


def test_smollm_pretokenizer_isolates_digits():
    assert smollm_pretokenize("x = 12.5, -3") == ["x", " =", " ", "1", "2", ".", "5", ",", " -",
                                                  "3"]


def _toy_bpe():
    # Byte-mapped vocabulary: 'Ġ' is the space byte.
    tokens = ["<|end|>", "a", "b", "Ġ", "1", "2", "ab", "Ġab", "abb"]
    merges = ["a b", "Ġ ab", "ab b"]
    types = [3] + [1] * (len(tokens) - 1)
    return BPETokenizer(tokens, merges, types, eos_id=0, pad_id=0, pre="smollm")


def test_toy_bpe_applies_merges_by_rank_and_special_tokens():
    tok = _toy_bpe()
    # "abb ab12" -> pre-tokens "abb", " ab", "1", "2"
    assert tok.encode("abb ab12<|end|>") == [8, 7, 4, 5, 0]
    assert tok.decode([8, 7, 4, 5, 0]) == "abb ab12<|end|>"
    assert tok.token_strings()[7] == " ab"


def test_char_tokenizer_round_trip_and_closed_vocabulary():
    tok = CharTokenizer()
    text = "f(x) = [0.25, -1.5]: 12\n"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert len(ids) == len(text)
    assert tok.token_strings()[ids[0]] == "f"
    assert tok.eos_id == 2 and tok.pad_id == 0
    assert tok.decode([tok.bos_id] + ids + [tok.eos_id, tok.pad_id]) == text
    with pytest.raises(ValueError, match="not in the CharTokenizer"):
        tok.encode("X")
