"""Byte-level BPE tokenizer from GGUF metadata (GPT-2 scheme, SmolLM2's `smollm` pre-tokenizer).

Radford et al. 2019 ("Language Models are Unsupervised Multitask Learners") byte-level BPE:
text -> pre-tokens (regex split) -> UTF-8 bytes mapped to printable characters -> greedy merges by
rank. The `smollm` pre-tokenizer (llama.cpp; Hugging Face `Digits(individual_digits=True)` then
`ByteLevel`) first isolates every numeric character, so "2024" is four tokens. Control tokens
(`<|im_start|>`, ...) are matched verbatim before pre-tokenisation.

The pre-tokenizer pattern
  's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
is implemented with `unicodedata` (no third-party regex engine); a test compares it with the
`regex` package when that is installed.
"""

from __future__ import annotations

import functools
import unicodedata

_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


@functools.lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable unicode characters."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _cat(ch: str) -> str:
    if _is_space(ch):
        return "S"
    c = unicodedata.category(ch)[0]
    return c if c in ("L", "N") else "O"


def _is_space(ch: str) -> bool:
    # Unicode White_Space (what \s means in the `regex` engine); str.isspace also accepts the
    # information separators U+001C..U+001F, which are not White_Space.
    return ch.isspace() and not ("\x1c" <= ch <= "\x1f")


def gpt2_pretokenize(text: str) -> list[str]:
    """Splits text like GPT-2's regex (see module docstring)."""
    out = []
    i, n = 0, len(text)
    cats = [_cat(ch) for ch in text]
    while i < n:
        ch = text[i]
        if ch == "'":
            hit = next((c for c in _CONTRACTIONS if text.startswith(c, i)), None)
            if hit:
                out.append(hit)
                i += len(hit)
                continue
        start = i
        if ch == " " and i + 1 < n and cats[i + 1] != "S":
            i += 1
        cat = cats[i]
        if cat != "S":
            j = i + 1
            while j < n and cats[j] == cat:
                j += 1
            out.append(text[start:j])
            i = j
            continue
        # Whitespace run: \s+(?!\S) keeps the last character for the next token when a
        # non-space follows; a lone non-' ' whitespace before a non-space falls to \s+.
        j = i
        while j < n and cats[j] == "S":
            j += 1
        if j < n and j - i >= 2:
            j -= 1
        out.append(text[i:j])
        i = j
    return out


def smollm_pretokenize(text: str) -> list[str]:
    """Every numeric character alone, the rest split by `gpt2_pretokenize`."""
    out, buf = [], []
    for ch in text:
        if unicodedata.category(ch)[0] == "N":
            if buf:
                out.extend(gpt2_pretokenize("".join(buf)))
                buf = []
            out.append(ch)
        else:
            buf.append(ch)
    if buf:
        out.extend(gpt2_pretokenize("".join(buf)))
    return out


class BPETokenizer:
    """Byte-level BPE with control tokens and a ChatML chat template.

    Attributes:
      eos_id: id that ends generation (<|im_end|> for SmolLM2-Instruct).
      pad_id: id used for padding (GGUF `padding_token_id`).
      bos_id: id of <|im_start|> style beginning token from the metadata (not added by `encode`).
    """

    def __init__(self, tokens: list[str], merges: list[str], token_types: list[int], *,
                 eos_id: int, pad_id: int, bos_id: int | None = None,
                 default_system: str | None = None, pre: str = "smollm"):
        if pre not in ("smollm", "gpt2"):
            raise ValueError(f"Unsupported pre-tokenizer {pre!r}; expected 'smollm' or 'gpt2'.")
        self._tokens = list(tokens)
        self._vocab = {t: i for i, t in enumerate(self._tokens)}
        self._ranks = {tuple(m.split(" ", 1)): r for r, m in enumerate(merges)}
        # GGUF token types: 1 normal, 3 control, 4 user-defined; the last two match verbatim.
        self._special = sorted((t for t, ty in zip(self._tokens, token_types) if ty in (3, 4)),
                               key=len, reverse=True)
        self._special_ids = {self._vocab[t] for t in self._special}
        self._byte_enc = bytes_to_unicode()
        self._byte_dec = {c: b for b, c in self._byte_enc.items()}
        self._pretok = smollm_pretokenize if pre == "smollm" else gpt2_pretokenize
        self._cache: dict[str, list[int]] = {}
        self.eos_id = int(eos_id)
        self.pad_id = int(pad_id)
        self.bos_id = None if bos_id is None else int(bos_id)
        self.default_system = default_system
        self._strings = None

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    def token_to_id(self, token: str) -> int:
        """Id of a vocabulary entry given in its byte-mapped form (e.g. 'Ġthe')."""
        return self._vocab[token]

    def _bpe(self, piece: str) -> list[int]:
        if piece in self._cache:
            return self._cache[piece]
        word = [self._byte_enc[b] for b in piece.encode("utf-8")]
        while len(word) > 1:
            ranked = [(self._ranks.get((a, b), 1 << 30), k)
                      for k, (a, b) in enumerate(zip(word[:-1], word[1:]))]
            rank, k = min(ranked)
            if rank == 1 << 30:
                break
            a, b = word[k], word[k + 1]
            merged, m = [], 0
            while m < len(word):
                if m < len(word) - 1 and word[m] == a and word[m + 1] == b:
                    merged.append(a + b)
                    m += 2
                else:
                    merged.append(word[m])
                    m += 1
            word = merged
        ids = [self._vocab[w] for w in word]
        self._cache[piece] = ids
        return ids

    def _split_special(self, text: str) -> list[tuple[str, bool]]:
        parts, i, start = [], 0, 0
        while i < len(text):
            if text[i] == "<":
                hit = next((s for s in self._special if text.startswith(s, i)), None)
                if hit:
                    if start < i:
                        parts.append((text[start:i], False))
                    parts.append((hit, True))
                    i += len(hit)
                    start = i
                    continue
            i += 1
        if start < len(text):
            parts.append((text[start:], False))
        return parts

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (control tokens written literally are recognised; no BOS added)."""
        ids = []
        for part, special in self._split_special(text):
            if special:
                ids.append(self._vocab[part])
            else:
                for piece in self._pretok(part):
                    ids.extend(self._bpe(piece))
        return ids

    def decode(self, ids) -> str:
        """Text of `ids`; invalid UTF-8 (a split multi-byte character) becomes U+FFFD.

        Raises:
          ValueError: an id outside [0, vocab_size) (a negative id would index from the end).
        """
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < len(self._tokens)]
        if bad:
            raise ValueError(f"Token ids {bad[:5]} are outside the vocabulary [0, "
                             f"{len(self._tokens)}).")
        out, buf = [], bytearray()
        for i in ids:
            tok = self._tokens[i]
            if i in self._special_ids:
                out.append(buf.decode("utf-8", errors="replace"))
                buf = bytearray()
                out.append(tok)
            else:
                buf.extend(self._byte_dec[ch] for ch in tok)
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)

    def token_strings(self) -> list[str]:
        """Decoded text of every id (index = id), for building token-level grammars."""
        if self._strings is None:
            self._strings = [self.decode([i]) for i in range(len(self._tokens))]
        return self._strings

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """ChatML, as SmolLM2's template: a default system turn when the first is not 'system'.

        <|im_start|>{role}\\n{content}<|im_end|>\\n ... then <|im_start|>assistant\\n.
        """
        out = []
        if self.default_system is not None and messages and messages[0]["role"] != "system":
            out.append(f"<|im_start|>system\n{self.default_system}<|im_end|>\n")
        for m in messages:
            out.append(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n")
        if add_generation_prompt:
            out.append("<|im_start|>assistant\n")
        return "".join(out)
