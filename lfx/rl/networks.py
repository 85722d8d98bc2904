"""Actor-critic networks (separate actor and critic torsos, as in PureJaxRL) and their policies.

Weights use an orthogonal initialisation (gain sqrt(2) in the torso, 0.01 on the policy head, 1 on
the value head) computed without LAPACK (`lfx.utils.initializers`), so initialising a vmapped
population cannot hit jaxlib's CPU deadlock in batched QR.

`ActorCritic.apply(params, obs) -> (Policy, value)` for one observation or a batch;
`ActorCritic.apply(params, obs, method="act")` the greedy action (argmax of the logits, the
Gaussian's mean), what evaluation and an exported policy use. Torsos: an MLP
(any observation, flattened) or a small conv net for MinAtar's [10, 10, C] grids. Heads: categorical
logits for discrete actions, a diagonal Gaussian with a state-independent log standard deviation for
continuous ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from lfx.utils.initializers import orthogonal
from lfx.utils.patch_conv import PatchConv

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu}
TORSOS = ("mlp", "minatar_conv")


@struct.dataclass
class Policy:
    """A categorical (`logits`) or diagonal Gaussian (`mean`, `log_std`) action distribution."""

    logits: jax.Array | None = None
    mean: jax.Array | None = None
    log_std: jax.Array | None = None

    @property
    def discrete(self) -> bool:
        return self.logits is not None

    def mode(self) -> jax.Array:
        """The most likely action: argmax of the logits, or the Gaussian's mean."""
        return jnp.argmax(self.logits, axis=-1) if self.discrete else self.mean

    def sample(self, key: jax.Array) -> jax.Array:
        if self.discrete:
            return jax.random.categorical(key, self.logits)
        noise = jax.random.normal(key, self.mean.shape, self.mean.dtype)
        return self.mean + jnp.exp(self.log_std) * noise

    def log_prob(self, action: jax.Array) -> jax.Array:
        if self.discrete:
            logp = jax.nn.log_softmax(self.logits)
            return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]
        z = (action - self.mean) / jnp.exp(self.log_std)
        return jnp.sum(-0.5 * z**2 - self.log_std - 0.5 * np.log(2 * np.pi), axis=-1)

    def entropy(self) -> jax.Array:
        if self.discrete:
            logp = jax.nn.log_softmax(self.logits)
            return -jnp.sum(jnp.exp(logp) * logp, axis=-1)
        return jnp.sum(self.log_std + 0.5 * np.log(2 * np.pi * np.e), axis=-1)


class MLPTorso(nn.Module):
    hidden_sizes: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for size in self.hidden_sizes:
            x = act(nn.Dense(size, kernel_init=orthogonal(np.sqrt(2)))(x))
        return x


class MinAtarConvTorso(nn.Module):
    """Conv(16, 3x3, stride 1) + ReLU, flatten, then the MLP layers (MinAtar's reference torso).

    The convolution is `PatchConv` (patches @ kernel), the same function as `nn.Conv(16, (3, 3),
    padding="VALID")`, because it stays a matrix product under a vmap over agents' parameters.
    """

    hidden_sizes: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, x):
        x = nn.relu(PatchConv(16, (3, 3))(x))
        x = x.reshape(x.shape[:-3] + (-1,))
        return MLPTorso(self.hidden_sizes, self.activation)(x)


class ActorCritic(nn.Module):
    """Separate actor and critic torsos over the same observation.

    Attributes:
      action_dim: number of discrete actions, or the dimension of a continuous action.
      discrete: categorical head if True, else diagonal Gaussian.
      torso: "mlp" or "minatar_conv".
      obs_ndim: rank of one observation (1 for vectors, 3 for MinAtar grids); the MLP torso
        flattens the trailing `obs_ndim` axes so batched and single observations both work.
    """

    action_dim: int
    discrete: bool
    torso: str = "mlp"
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs):
        if self.torso == "mlp":
            batch_shape = obs.shape[: obs.ndim - self.obs_ndim]
            x = obs.reshape(batch_shape + (-1,))
            actor = MLPTorso(self.hidden_sizes, self.activation, name="actor_torso")(x)
            critic = MLPTorso(self.hidden_sizes, self.activation, name="critic_torso")(x)
        else:
            actor = MinAtarConvTorso(self.hidden_sizes, self.activation, name="actor_torso")(obs)
            critic = MinAtarConvTorso(self.hidden_sizes, self.activation, name="critic_torso")(obs)
        out = nn.Dense(self.action_dim, kernel_init=orthogonal(0.01))(actor)
        value = nn.Dense(1, kernel_init=orthogonal(1.0))(critic)[..., 0]
        if self.discrete:
            return Policy(logits=out), value
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return Policy(mean=out, log_std=jnp.broadcast_to(log_std, out.shape)), value

    def act(self, obs):
        """The greedy action for `obs` (one observation or a batch): `Policy.mode()`."""
        pi, _ = self(obs)
        return pi.mode()
