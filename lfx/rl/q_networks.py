"""Q-networks for discrete actions, and their epsilon-greedy behaviour policy.

    q = QNetwork(action_dim=2).apply(params, obs)               # [..., A] action values
    a = QNetwork(action_dim=2).apply(params, obs, method="act")  # [...] greedy action, argmax_a q

Two torsos, each followed by a linear head of `action_dim` outputs:

* "mlp": the observation flattened (its trailing `obs_ndim` axes), then for each width h in
  `hidden_sizes`: Dense(h) -> [LayerNorm] -> ReLU. PureJaxRL's DQN is (120, 84) without LayerNorm;
  PQN's CartPole network (Gallici et al. 2024, arXiv:2407.04811, purejaxql `pqn_gymnax.py`) is
  (256, 256) with LayerNorm.
* "minatar_conv": for MinAtar's [10, 10, C] grids, Conv(16, 3x3, VALID) -> [LayerNorm] -> ReLU,
  flatten, then the MLP layers (purejaxql `pqn_minatar.py`: Dense(128) -> LayerNorm -> ReLU). The
  convolution is `lfx.utils.patch_conv.PatchConv` (a patch matrix product), the same function as
  `nn.Conv(16, (3, 3), padding="VALID")`, fast when vmapped over agents' parameters.

LayerNorm (`layer_norm=True`, over the feature axis, flax's default) is what makes PQN's online
Q-learning stable without a target network (the paper's Theorem 1). `kernel_init` is "lecun_normal"
(flax's default, PureJaxRL's and purejaxql's MLPs) or "he_normal" (purejaxql's MinAtar torso); the
head is always LeCun normal and every bias starts at zero. purejaxql's MinAtar network divides the
observation by 255 first; MinAtar grids are 0/1 and a LayerNorm follows the convolution, so lfx
does not (the division only shrinks the conv's pre-normalisation scale towards LayerNorm's epsilon).

`epsilon_greedy(key, q, eps)` picks a uniformly random action with probability eps, else the
argmax; `linear_epsilon(start, end, fraction, progress)` is the linear decay both DQN and PQN use.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from lfx.utils.patch_conv import PatchConv

TORSOS = ("mlp", "minatar_conv")
KERNEL_INITS = {"lecun_normal": nn.initializers.lecun_normal, "he_normal": nn.initializers.he_normal}


class QNetwork(nn.Module):
    """Q(s, .) for one observation or a batch: `apply(params, obs) -> [..., action_dim]`.

    Attributes:
      action_dim: number of discrete actions.
      torso: "mlp" or "minatar_conv" (module docstring).
      hidden_sizes: widths of the Dense layers (after the convolution for "minatar_conv").
      layer_norm: LayerNorm before every hidden ReLU (PQN), or none (DQN).
      kernel_init: "lecun_normal" or "he_normal" for the torso's kernels.
      obs_ndim: rank of one observation (1 for vectors, 3 for MinAtar grids).
      conv_features: output channels of the MinAtar convolution.
    """

    action_dim: int
    torso: str = "mlp"
    hidden_sizes: Sequence[int] = (120, 84)
    layer_norm: bool = False
    kernel_init: str = "lecun_normal"
    obs_ndim: int = 1
    conv_features: int = 16

    def _norm_relu(self, x: jax.Array) -> jax.Array:
        if self.layer_norm:
            x = nn.LayerNorm()(x)
        return nn.relu(x)

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = jnp.asarray(obs, jnp.float32)
        batch_shape = x.shape[: x.ndim - self.obs_ndim]
        if self.torso == "minatar_conv":
            x = self._norm_relu(PatchConv(self.conv_features, (3, 3), KERNEL_INITS[self.kernel_init](),
                                         name="PatchConv3x3_0")(x))
        x = x.reshape(batch_shape + (-1,))
        for size in self.hidden_sizes:
            x = self._norm_relu(nn.Dense(size, kernel_init=KERNEL_INITS[self.kernel_init]())(x))
        return nn.Dense(self.action_dim)(x)

    def act(self, obs: jax.Array) -> jax.Array:
        """The greedy action argmax_a Q(obs, a) (int32, one per observation)."""
        return jnp.argmax(self(obs), axis=-1).astype(jnp.int32)


def epsilon_greedy(key: jax.Array, q: jax.Array, eps: jax.Array) -> jax.Array:
    """Actions [...] from Q-values [..., A]: uniform over the A actions with probability eps, else argmax.

    The random action may equal the greedy one (the behaviour policy's greedy probability is
    1 - eps + eps / A), as in PureJaxRL's and purejaxql's `eps_greedy_exploration`.
    """
    k_explore, k_action = jax.random.split(key)
    greedy = jnp.argmax(q, axis=-1)
    random = jax.random.randint(k_action, greedy.shape, 0, q.shape[-1])
    explore = jax.random.uniform(k_explore, greedy.shape) < eps
    return jnp.where(explore, random, greedy).astype(jnp.int32)


def linear_epsilon(start: jax.Array, end: jax.Array, fraction: jax.Array,
                   progress: jax.Array) -> jax.Array:
    """eps = start + (end - start) * min(progress / fraction, 1), progress in [0, 1] of the run.

    `fraction` = 0 gives `end` from the start. All arguments may be traced.
    """
    frac = jnp.clip(progress / jnp.maximum(fraction, 1e-12), 0.0, 1.0)
    return start + (end - start) * jnp.where(fraction > 0, frac, 1.0)
