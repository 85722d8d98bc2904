"""Character-level tokenizer for the small trainable LM (numbers, lists and short words)."""

from __future__ import annotations

import string

SPECIALS = ("<pad>", "<bos>", "<eos>")
CHARS = string.digits + "-.,: \n[]()=+_" + string.ascii_lowercase


class CharTokenizer:
    """One id per character: 0 <pad>, 1 <bos>, 2 <eos>, then `chars` in order.

    eos_id is 2 like SmolLM2's, so `generate`'s defaults serve both models. Unknown characters
    raise ValueError (the vocabulary is closed).
    """

    def __init__(self, chars: str = CHARS):
        if len(set(chars)) != len(chars):
            raise ValueError("CharTokenizer chars must be distinct.")
        self.chars = chars
        self._strings = list(SPECIALS) + list(chars)
        self._index = {c: i + len(SPECIALS) for i, c in enumerate(chars)}
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2

    @property
    def vocab_size(self) -> int:
        return len(self._strings)

    def encode(self, text: str) -> list[int]:
        try:
            return [self._index[c] for c in text]
        except KeyError as e:
            raise ValueError(f"Character {e.args[0]!r} is not in the CharTokenizer vocabulary "
                             f"({self.chars!r}); lower-case the text or extend chars.") from None

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
        return "".join(self._strings[i] for i in ids if i >= n)

    def token_strings(self) -> list[str]:
        """Decoded text of every id ('' for the special tokens)."""
        return [""] * len(SPECIALS) + list(self.chars)

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """The contents, one per line (the small LM has no chat format; roles are dropped)."""
        del add_generation_prompt
        return "".join(f"{m['content']}\n" for m in messages)
