"""Word-level tokenizer for small LMs trained on synthetic languages (one id per word)."""

from __future__ import annotations

from lfx.lm.char_tokenizer import SPECIALS, ClosedVocabulary


class WordTokenizer(ClosedVocabulary):
    """One id per word: 0 <pad>, 1 <bos>, 2 <eos>, then `words` in order.

    Text is split on whitespace; unknown words raise ValueError (the vocabulary is closed). The
    special ids match `CharTokenizer`'s (and eos 2 matches SmolLM2's), so `generate`'s defaults
    serve every lfx model.
    """

    sep = " "

    def __init__(self, words: tuple[str, ...] | list[str]):
        words = tuple(words)
        if len(set(words)) != len(words):
            raise ValueError("WordTokenizer words must be distinct.")
        bad = [w for w in words if not w or w.split() != [w] or w in SPECIALS]
        if bad:
            raise ValueError(f"WordTokenizer words must be non-empty, contain no whitespace and "
                             f"not be a special token; got {bad[:5]}.")
        self.words = words
        super().__init__(words)

    def encode(self, text: str) -> list[int]:
        try:
            return [self._index[w] for w in text.split()]
        except KeyError as e:
            raise ValueError(f"Word {e.args[0]!r} is not in the WordTokenizer vocabulary of "
                             f"{len(self.words)} words.") from None

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """The contents joined by spaces (the synthetic language has no chat format)."""
        del add_generation_prompt
        return " ".join(m["content"] for m in messages)
