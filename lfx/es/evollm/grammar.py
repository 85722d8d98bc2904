"""The number grammar as a token-level finite-state machine for constrained decoding.

Language: exactly k integers separated by "," and ended by a terminator character, each integer an
optional "-" and 1..max_digits ASCII digits: `-?[0-9]{1,m}(,-?[0-9]{1,m}){k-1}<term>`.

Built in two steps: a character DFA (acyclic, so every path ends within k*(m+2) characters), then a
token DFA: token t moves state s to the state the character DFA reaches after reading t's decoded
text, or -1 if any character is rejected, the text is empty, or the text runs on after the terminator.
Tokens spanning several characters (",-", "12", ...) are therefore handled for any tokenizer. The
accepting state is absorbing for the EOS/pad ids so a finished row can idle.
"""

from __future__ import annotations

import numpy as np

_DIGITS = "0123456789"


class CharDFA:
    """Character DFA of the number grammar; per integer i the states start, minus, 1..m digits."""

    def __init__(self, k: int, max_digits: int, terminator: str = ":"):
        if k < 1 or max_digits < 1:
            raise ValueError(f"k and max_digits must be >= 1, got {k}, {max_digits}.")
        if len(terminator) != 1 or terminator in _DIGITS + "-,":
            raise ValueError(f"terminator must be one character not in '0-9-,', got {terminator!r}.")
        self.k, self.m, self.terminator = k, max_digits, terminator
        # Per number i: state "start" (expects - or digit), "minus" (expects digit), "d{c}" (c digits).
        names = []
        for i in range(k):
            names += [(i, "start"), (i, "minus")] + [(i, c) for c in range(1, max_digits + 1)]
        names.append("final")
        self.index = {n: j for j, n in enumerate(names)}
        self.num_states = len(names)
        self.start = self.index[(0, "start")]
        self.final = self.index["final"]

    def step(self, state: int, ch: str) -> int:
        """Next state or -1."""
        if state == self.final:
            return -1
        i, phase = self._name(state)
        if phase in ("start", "minus"):
            if ch in _DIGITS:
                return self.index[(i, 1)]
            if ch == "-" and phase == "start":
                return self.index[(i, "minus")]
            return -1
        c = phase
        if ch in _DIGITS:
            return self.index[(i, c + 1)] if c < self.m else -1
        if ch == "," and i < self.k - 1:
            return self.index[(i + 1, "start")]
        if ch == self.terminator and i == self.k - 1:
            return self.final
        return -1

    def _name(self, state: int):
        per = 2 + self.m
        i, r = divmod(state, per)
        return i, ("start" if r == 0 else "minus" if r == 1 else r - 1)

    def run(self, text: str, state: int | None = None) -> int:
        s = self.start if state is None else state
        for ch in text:
            s = self.step(s, ch)
            if s < 0:
                return -1
        return s

    def accepts(self, text: str) -> bool:
        return self.run(text) == self.final


def build_token_transitions(
    token_strings: list[str], k: int, max_digits: int, terminator: str = ":", absorbing_ids=()
) -> tuple[np.ndarray, int, np.ndarray]:
    """Token FSM arrays for the number grammar.

    Args:
      token_strings: decoded text of every token id (`tokenizer.token_strings()`), length V.
      k: integers per proposal (the block size); max_digits: digits per integer.
      terminator: the character ending a proposal; absorbing_ids: ids (EOS, pad) that keep the
        final state final.

    Returns:
      (transitions int32 [S, V] with -1 = forbidden, start state, final bool [S]).

    Raises:
      ValueError: if the vocabulary lacks a single-character token needed to finish every proposal.
    """
    dfa = CharDFA(k, max_digits, terminator)
    vocab = len(token_strings)
    # Only tokens made entirely of grammar characters can ever be allowed.
    alphabet = set(_DIGITS + "-," + terminator)
    candidates = [t for t, s in enumerate(token_strings) if s and set(s) <= alphabet]
    singles = {token_strings[t] for t in candidates if len(token_strings[t]) == 1}
    missing = sorted(alphabet - singles)
    if missing:
        raise ValueError(
            f"Tokenizer has no single-character token for {missing}; the number grammar needs one "
            "per digit, '-', ',' and the terminator (choose another terminator)."
        )
    trans = np.full((dfa.num_states, vocab), -1, dtype=np.int32)
    for s in range(dfa.num_states):
        if s == dfa.final:
            continue
        for t in candidates:
            trans[s, t] = dfa.run(token_strings[t], s)
    for t in absorbing_ids:
        if t is not None and 0 <= t < vocab:
            trans[dfa.final, t] = dfa.final
    final = np.zeros(dfa.num_states, dtype=bool)
    final[dfa.final] = True
    return trans, dfa.start, final
