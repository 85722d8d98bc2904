"""Bit sequences: n bits written as n / k words of k bits, in any order, rewarded near a mode set.

Malkin et al. 2022 ("Trajectory balance: Improved credit assignment in GFlowNets",
arXiv:2201.13259), non-autoregressive variant: the object is n/k slots, each one of 2^k words.

    log R(x) = -beta * min_{m in M} d_H(x, m) / n,

d_H the Hamming distance in bits. The mode set M is built as in that paper: each mode concatenates
n/k words drawn at random from a small set of k-bit patterns (all zeros, all ones, and half/half
patterns). A mode counts as found when a sample lies within Hamming distance `mode_radius` of it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from lfx.gfn.base import GFNState
from lfx.gfn.positional import PositionalEnv


@struct.dataclass
class BitSeqParams:
    """modes: [M, n] int32 bits; beta: reward temperature (traced)."""

    modes: jax.Array
    beta: float = 3.0
    max_steps_in_episode: int = 1 << 30


def word_patterns(k: int) -> np.ndarray:
    """[P, k] bit patterns used to build modes: 0..0, 1..1, 1..10..0, 0..01..1, 0011..1100."""
    half = k // 2
    q = k // 4
    pats = [
        [0] * k,
        [1] * k,
        [1] * half + [0] * (k - half),
        [0] * half + [1] * (k - half),
        [0] * q + [1] * (k - 2 * q) + [0] * q,
    ]
    return np.unique(np.asarray(pats, np.int32), axis=0)


def make_modes(seed: int, n: int, k: int, num_modes: int) -> np.ndarray:
    """[num_modes, n] distinct modes, each n/k random words from `word_patterns(k)`."""
    rng = np.random.default_rng(seed)
    pats = word_patterns(k)
    num_words = n // k
    if num_modes > len(pats) ** num_words:
        raise ValueError(f"At most {len(pats) ** num_words} distinct modes exist for n={n}, k={k}.")
    modes: set[tuple[int, ...]] = set()
    while len(modes) < num_modes:
        modes.add(tuple(pats[rng.integers(len(pats), size=num_words)].reshape(-1)))
    return np.asarray(sorted(modes), np.int32)


def words_to_bits(obj: jax.Array, k: int) -> jax.Array:
    """[..., L] words (most significant bit first) -> [..., L * k] bits."""
    shifts = jnp.arange(k - 1, -1, -1)
    bits = (obj[..., None] >> shifts) & 1
    return bits.reshape(*obj.shape[:-1], -1)


class BitSequence(PositionalEnv):
    """n bits as n / k words; static settings `n`, `k`."""

    def __init__(self, n: int = 8, k: int = 2, mode_radius: int = 0):
        self.mode_radius = mode_radius
        if n % k:
            raise ValueError(f"n must be a multiple of k; got n={n}, k={k}.")
        super().__init__(n // k, 2**k)
        self.n, self.k = n, k

    @property
    def name(self) -> str:
        return f"BitSequence-{self.n}-{self.k}"

    def default_params_for(self, seed: int = 0, num_modes: int = 4, beta: float = 3.0):
        return BitSeqParams(modes=jnp.asarray(make_modes(seed, self.n, self.k, num_modes)), beta=beta)

    @property
    def default_params(self) -> BitSeqParams:
        return self.default_params_for()

    def mode_hits(self, obj, params: BitSeqParams):
        """A mode m is hit by x when d_H(x, m) <= `mode_radius` (static)."""
        bits = words_to_bits(obj, self.k)
        return jnp.sum(bits[..., None, :] != params.modes, axis=-1) <= self.mode_radius

    def log_reward(self, state: GFNState, params: BitSeqParams) -> jax.Array:
        return bitseq_log_reward(state.obj, self.k, params)


def bitseq_log_reward(obj: jax.Array, k: int, params: BitSeqParams) -> jax.Array:
    """log R for words `obj` ([..., L]); returns [...]."""
    bits = words_to_bits(obj, k)
    dist = jnp.sum(bits[..., None, :] != params.modes, axis=-1).min(axis=-1)
    return -params.beta * dist / bits.shape[-1]


def make_bitseq(
    n: int = 8, k: int = 2, seed: int = 0, num_modes: int = 4, beta: float = 3.0, mode_radius: int = 0
):
    """Registry factory: `(env, env_params)` with `num_modes` modes drawn with `seed`."""
    env = BitSequence(n, k, mode_radius)
    return env, env.default_params_for(seed, num_modes, beta)
