"""Character-level tokenizer for the small trainable LM (numbers, lists and short words)."""

from __future__ import annotations

import string

SPECIALS = ("<pad>", "<bos>", "<eos>")
CHARS = string.digits + "-.,: \n[]()=+_" + string.ascii_lowercase


class ClosedVocabulary:
    """Ids 0 <pad>, 1 <bos>, 2 <eos>, then `symbols` in order; decoding joins them with `sep`.

    eos_id is 2 like SmolLM2's, so `generate`'s defaults serve every lfx model. The base of the
    character and word tokenizers (`lfx.lm.word_tokenizer`).
    """

    sep = ""

    def __init__(self, symbols):
        self._strings = list(SPECIALS) + list(symbols)
        self._index = {c: i + len(SPECIALS) for i, c in enumerate(symbols)}
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2

    @property
    def vocab_size(self) -> int:
        return len(self._strings)

    def decode(self, ids) -> str:
        """Text of `ids`; special tokens are dropped.

        Raises:
          ValueError: an id outside [0, vocab_size) (a negative id would index from the end).
        """
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < len(self._strings)]
        if bad:
            raise ValueError(f"Token ids {bad[:5]} are outside the vocabulary [0, "
                             f"{len(self._strings)}).")
        n = len(SPECIALS)
        return self.sep.join(self._strings[i] for i in ids if i >= n)

    def token_strings(self) -> list[str]:
        """Decoded text of every id ('' for the special tokens)."""
        return [""] * len(SPECIALS) + self._strings[len(SPECIALS):]


class CharTokenizer(ClosedVocabulary):
    """One id per character: 0 <pad>, 1 <bos>, 2 <eos>, then `chars` in order.

    Unknown characters raise ValueError (the vocabulary is closed).
    """

    def __init__(self, chars: str = CHARS):
        if len(set(chars)) != len(chars):
            raise ValueError("CharTokenizer chars must be distinct.")
        self.chars = chars
        super().__init__(chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self._index[c] for c in text]
        except KeyError as e:
            raise ValueError(f"Character {e.args[0]!r} is not in the CharTokenizer vocabulary "
                             f"({self.chars!r}); lower-case the text or extend chars.") from None

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """The contents, one per line (the small LM has no chat format; roles are dropped)."""
        del add_generation_prompt
        return "".join(f"{m['content']}\n" for m in messages)
