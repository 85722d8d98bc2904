"""EvoLLM prompt construction (host side): one text prompt per block of coordinates.

Each context member is one line, "x_1,...,x_k:f\\n", with x the block's coordinates as integers and f
the member's discretised fitness (see `encoding`); lines are already in the configured order
(least-to-most by default: worst first, best last, the paper's finding). The prompt ends with an
optional header-free open line, so the LM's continuation is the proposal for the next mean, stopped by
the grammar at ":". Worked example (k = 2, two members)::

    -150,32:0
    -120,10:999
    <LM writes e.g. "-101,4:">
"""

from __future__ import annotations

from lfx.es.evollm.encoding import format_numbers


def block_prompt(x_int_block, f_int, header: str = "") -> str:
    """Text prompt for one block.

    Args:
      x_int_block: [L, k] integers, context members in prompt order.
      f_int: [L] integer fitness, same order.
      header: optional text put before the lines.
    """
    lines = [f"{format_numbers(x)}:{int(f)}\n" for x, f in zip(x_int_block, f_int)]
    return header + "".join(lines)


def left_pad(token_lists: list[list[int]], pad_id: int):
    """Token id lists -> (ids [B, P] left-padded with pad_id, lengths [B]) as nested Python lists."""
    width = max(len(t) for t in token_lists)
    ids = [[pad_id] * (width - len(t)) + list(t) for t in token_lists]
    return ids, [len(t) for t in token_lists]
