"""Actor-critic networks (separate actor and critic torsos, as in PureJaxRL) and their policies.

Weights use an orthogonal initialisation (gain sqrt(2) in the torso, 0.01 on the policy head, 1 on
the value head) computed without LAPACK (`lfx.utils.initializers`), so initialising a vmapped
population cannot hit jaxlib's CPU deadlock in batched QR.

`ActorCritic.apply(params, obs) -> (Policy, value)` for one observation or a batch;
`ActorCritic.apply(params, obs, method="act")` the greedy action (argmax of the logits, the
Gaussian's mean), what evaluation and an exported policy use. Torsos: an MLP
(any observation, flattened) or a small conv net for MinAtar's [10, 10, C] grids. Heads: categorical
logits for discrete actions, a diagonal Gaussian with a state-independent log standard deviation for
continuous ones (`action_dist="gaussian"`), or brax's tanh-squashed Gaussian (`"tanh_normal"`:
state-dependent scale softplus(s) + 0.001, actions tanh(u), `brax.training.distribution.
NormalTanhDistribution`).
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

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu, "swish": nn.swish}
TORSOS = ("mlp", "minatar_conv")
ACTION_DISTS = ("gaussian", "tanh_normal")
MIN_STD = 1e-3  # brax NormalTanhDistribution's min_std

# 16-point Gauss-Hermite rule, E_{z~N(0,1)}[f(z)] = sum_i w_i f(sqrt(2) x_i) / sqrt(pi): for
# f = log(1 - tanh^2) its error is below 0.01 nats per dimension for std <= 3.
_GH_X, _GH_W = np.polynomial.hermite.hermgauss(16)


def tanh_log_det_jacobian(u: jax.Array) -> jax.Array:
    """log |d tanh(u) / du| = log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), elementwise.

    The stable form is brax's `TanhBijector.forward_log_det_jacobian`.
    """
    return 2.0 * (np.log(2.0) - u - jax.nn.softplus(-2.0 * u))


@struct.dataclass
class Policy:
    """A categorical (`logits`) or diagonal Gaussian (`mean`, `log_std`) action distribution.

    With `squash`, the Gaussian is over pre-tanh actions u and the env receives tanh(u)
    (`to_env`): `sample` returns u, `log_prob(u)` = log N(u) - sum log|d tanh/du| (the density of
    a = tanh(u)), and `entropy` = H[N] + E_u[sum log|d tanh/du|], the expectation by 16-point
    Gauss-Hermite quadrature per dimension (brax estimates it with one reparametrised sample).
    Rollouts store u, as brax stores its `raw_action`, so no atanh is ever needed.
    """

    logits: jax.Array | None = None
    mean: jax.Array | None = None
    log_std: jax.Array | None = None
    squash: bool = struct.field(pytree_node=False, default=False)

    @property
    def discrete(self) -> bool:
        return self.logits is not None

    def mode(self) -> jax.Array:
        """The greedy env action: argmax of the logits, the Gaussian's mean (tanh(mean) squashed)."""
        if self.discrete:
            return jnp.argmax(self.logits, axis=-1)
        return jnp.tanh(self.mean) if self.squash else self.mean

    def to_env(self, action: jax.Array) -> jax.Array:
        """The action the env receives for a sampled `action`: tanh(u) when squashed, else itself."""
        return jnp.tanh(action) if self.squash else action

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
        logp = -0.5 * z**2 - self.log_std - 0.5 * np.log(2 * np.pi)
        if self.squash:
            logp = logp - tanh_log_det_jacobian(action)
        return jnp.sum(logp, axis=-1)

    def entropy(self) -> jax.Array:
        if self.discrete:
            logp = jax.nn.log_softmax(self.logits)
            return -jnp.sum(jnp.exp(logp) * logp, axis=-1)
        h = self.log_std + 0.5 * np.log(2 * np.pi * np.e)
        if self.squash:
            u = self.mean[..., None] + np.sqrt(2.0) * jnp.exp(self.log_std)[..., None] * _GH_X
            h = h + jnp.sum(tanh_log_det_jacobian(u) * _GH_W, axis=-1) / np.sqrt(np.pi)
        return jnp.sum(h, axis=-1)


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
      hidden_sizes: the torsos' widths; `value_hidden_sizes` the critic's if non-empty (brax's
        PPO: (32,) * 4 for the policy, (256,) * 5 for the value).
      action_dist: "gaussian" (state-independent log std, initialised at 0) or "tanh_normal"
        (brax's: the head outputs [mean, s], std = softplus(s) + 0.001, actions tanh-squashed).
      obs_ndim: rank of one observation (1 for vectors, 3 for MinAtar grids); the MLP torso
        flattens the trailing `obs_ndim` axes so batched and single observations both work.
    """

    action_dim: int
    discrete: bool
    torso: str = "mlp"
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    obs_ndim: int = 1
    value_hidden_sizes: Sequence[int] = ()
    action_dist: str = "gaussian"

    @nn.compact
    def __call__(self, obs, value_only: bool = False):
        critic_torso = MinAtarConvTorso if self.torso == "minatar_conv" else MLPTorso
        x = obs
        if self.torso == "mlp":
            x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        critic = critic_torso(self.value_hidden_sizes or self.hidden_sizes
                              if self.torso == "mlp" else self.hidden_sizes, self.activation,
                              name="critic_torso")(x)
        # Heads are named explicitly so that `value_only` (no actor) finds the same parameters.
        value = nn.Dense(1, kernel_init=orthogonal(1.0), name="Dense_1")(critic)[..., 0]
        if value_only:
            return value
        actor = critic_torso(self.hidden_sizes, self.activation, name="actor_torso")(x)
        squash = not self.discrete and self.action_dist == "tanh_normal"
        out = nn.Dense(self.action_dim * (2 if squash else 1), kernel_init=orthogonal(0.01),
                       name="Dense_0")(actor)
        if self.discrete:
            return Policy(logits=out), value
        if squash:
            mean, s = jnp.split(out, 2, axis=-1)
            return Policy(mean=mean, log_std=jnp.log(jax.nn.softplus(s) + MIN_STD), squash=True), value
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return Policy(mean=out, log_std=jnp.broadcast_to(log_std, out.shape)), value

    def act(self, obs):
        """The greedy action for `obs` (one observation or a batch): `Policy.mode()`."""
        pi, _ = self(obs)
        return pi.mode()

    def value(self, obs):
        """V(obs) alone: the critic torso and head, without the actor's forward pass."""
        return self(obs, value_only=True)


# ---------------------------------------------------------------------------------------------
# Off-policy continuous control (SAC): a squashed-Gaussian actor and an ensemble of Q-functions.


class SquashedGaussianActor(nn.Module):
    """pi(u | s) = N(mu(s), sigma(s)^2), a = tanh(u) in [-1, 1]^A (Haarnoja et al. 2018).

    The head outputs [mu, s] with sigma = softplus(s) + 0.001 (brax's `NormalTanhDistribution`);
    `__call__` returns the squashed `Policy` (samples u, `log_prob(u)` is the density of tanh(u)).
    `act(obs)` is the deterministic env action: tanh(mu) mapped affinely onto [action_low,
    action_high] per dimension, so an exported actor drives the env without knowing the recipe.

    Attributes:
      action_dim: A. action_low / action_high: the env's bounds, one float per dimension.
    """

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    action_low: Sequence[float] = ()
    action_high: Sequence[float] = ()

    @nn.compact
    def __call__(self, obs):
        x = MLPTorso(self.hidden_sizes, self.activation, name="torso")(obs)
        out = nn.Dense(2 * self.action_dim, kernel_init=orthogonal(0.01))(x)
        mean, s = jnp.split(out, 2, axis=-1)
        return Policy(mean=mean, log_std=jnp.log(jax.nn.softplus(s) + MIN_STD), squash=True)

    def scale(self, a):
        """[-1, 1]^A -> [low, high]^A: low + (a + 1) (high - low) / 2 (identity without bounds)."""
        if not self.action_low:
            return a
        low, high = jnp.asarray(self.action_low), jnp.asarray(self.action_high)
        return low + 0.5 * (a + 1.0) * (high - low)

    def act(self, obs):
        """The deterministic env action scale(tanh(mu(s))), for one observation or a batch."""
        return self.scale(self(obs).mode())


class QHead(nn.Module):
    """One Q-function: an MLP torso and a linear output, [*batch, D] -> [*batch]."""

    hidden_sizes: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, x):
        x = MLPTorso(self.hidden_sizes, self.activation)(x)
        return nn.Dense(1, kernel_init=orthogonal(1.0))(x)[..., 0]


class QEnsemble(nn.Module):
    """`num_critics` independent Q(s, a) MLPs over concat(s, a): output [num_critics, *batch].

    Parameters carry a leading [num_critics] axis (`nn.vmap`), so the twin critics of SAC/TD3 are
    one module and one optimiser state.
    """

    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    num_critics: int = 2

    @nn.compact
    def __call__(self, obs, action):
        x = jnp.concatenate([obs, action], axis=-1)
        ensemble = nn.vmap(QHead, variable_axes={"params": 0}, split_rngs={"params": True},
                           in_axes=None, out_axes=0, axis_size=self.num_critics)
        return ensemble(self.hidden_sizes, self.activation, name="critics")(x)
