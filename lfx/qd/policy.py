"""A small MLP policy whose parameters are one flat genome vector.

    h_0 = obs,  h_{l+1} = tanh(W_l h_l + b_l),  action = low + (high - low) * (h_L + 1) / 2

The output layer is tanh too, so actions stay in the env's box. Paolo et al. evolve such small
feed-forward controllers (e.g. 2 hidden layers of 5 units for the hard maze, SERENE arXiv:2102.03140).
The genome layout is [W_0 (in x h1, row-major), b_0, W_1, b_1, ...].
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class MLPPolicy:
    obs_dim: int
    action_dim: int
    hidden: tuple[int, ...] = (16,)

    def __post_init__(self):
        if self.obs_dim <= 0 or self.action_dim <= 0 or any(h <= 0 for h in self.hidden):
            raise ValueError(f"MLPPolicy sizes must be positive, got {self}.")

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return (self.obs_dim, *self.hidden, self.action_dim)

    @property
    def num_params(self) -> int:
        s = self.layer_sizes
        return sum(a * b + b for a, b in itertools.pairwise(s))

    def init(self, key: jax.Array, n: int | None = None) -> jax.Array:
        """Genome(s) with LeCun-normal weights and N(0, 1) biases: [D] or [n, D].

        Non-zero biases matter: several tasks start from a zero observation, where a bias-free
        network would output 0 and every initial policy would stand still.
        """
        if n is not None:
            return jax.vmap(self.init)(jax.random.split(key, n))
        parts = []
        s = self.layer_sizes
        for i, (a, b) in enumerate(itertools.pairwise(s)):
            w = jax.random.normal(jax.random.fold_in(key, i), (a * b,)) / math.sqrt(a)
            parts += [w, jax.random.normal(jax.random.fold_in(key, 1000 + i), (b,))]
        return jnp.concatenate(parts)

    def apply(self, genome: jax.Array, obs: jax.Array) -> jax.Array:
        """Action in [-1, 1]^action_dim for one genome [D] and one observation [obs_dim]."""
        h = obs.reshape(-1)
        i = 0
        s = self.layer_sizes
        for a, b in itertools.pairwise(s):
            w = genome[i : i + a * b].reshape(a, b)
            i += a * b
            bias = genome[i : i + b]
            i += b
            h = jnp.tanh(h @ w + bias)
        return h
