"""Networks of the offline-RL algorithms that lfx.rl lacks: an MLP with optional LayerNorm and the
reference codes' initialisations, a deterministic tanh actor, a state-value net V(s), a critic
ensemble Q_j(s, a) with LayerNorm, and a Gaussian actor with a state-independent log std (IQL).

    MLP(out_dim)                     [..., D] -> [..., out_dim]
    DeterministicActor(action_dim)   [..., D] -> [..., A]            a = tanh(f(s)) in [-1, 1]^A
    ValueNet()                       [..., D] -> [...]               V(s)
    CriticEnsemble(num_critics)      ([..., D], [..., A]) -> [N, ...] Q_j(s, a), member axis first
    EnsembleDense / EnsembleLayerNorm  its layers: N independent Dense / LayerNorm as batched matmuls
    GaussianActor(action_dim)        [..., D] -> Policy             N(tanh(f(s)), exp(log_std)^2)
    ConditionalVAE(action_dim, L)    ([..., D], [..., A], key) -> (a~ [..., A], mean, log_std [..., L])

Every hidden layer is Dense -> activation -> LayerNorm (when `layer_norm`), the order of ReBRAC's
actor and critic (CORL `algorithms/offline/rebrac.py` `DetActor`/`Critic`, Unifloral
`algorithms/rebrac.py` `SoftQNetwork`). Two initialisations, chosen by `initializer`:

  "flax":   lecun-normal kernels, zero biases (flax's `nn.Dense` default; Unifloral's TD3+BC, IQL, BC).
  "rebrac": the EDAC-paper initialisation CORL and Unifloral use for ReBRAC: hidden kernels
            U(+-1/sqrt(fan_in)) (PyTorch's `nn.Linear` default) and biases 0.1; the output layer's
            kernel and bias U(+-head_scale) (1e-3 for the actor, 3e-3 for the critic).

Neither uses a QR decomposition, so initialising a vmapped population is safe on CPU (see
`lfx.utils.initializers`).

Signatures are stable: the other lfx.offline algorithms (CQL, SAC-N, EDAC, ...) import from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from lfx.rl.networks import ACTIVATIONS, Policy

INITS = ("flax", "rebrac")
HIDDEN_BIAS_REBRAC = 0.1  # CORL rebrac.py: bias_init=nn.initializers.constant(0.1)


def uniform_init(bound: float):
    """U(-bound, bound) for any shape (CORL rebrac.py `uniform_init`)."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def fan_in_uniform_init():
    """PyTorch's nn.Linear kernel default: U(+-1/sqrt(fan_in)) (CORL rebrac.py `pytorch_init`); fan_in =
    shape[-2], so an ensemble kernel [N, in, out] gets each member's bound."""

    def init(key, shape, dtype=jnp.float32):
        bound = 1.0 / math.sqrt(shape[-2])
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class MLP(nn.Module):
    """Hidden layers Dense -> activation [-> LayerNorm], then a linear output [..., out_dim].

    Attributes:
      out_dim: output width. hidden_sizes: hidden widths. activation: a key of ACTIVATIONS.
      layer_norm: LayerNorm after each hidden activation. initializer: "flax" or "rebrac" (module docstring).
      head_scale: the "rebrac" init's output bound (ignored by "flax").
    """

    out_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False
    initializer: str = "flax"
    head_scale: float = 3e-3

    @nn.compact
    def __call__(self, x):
        if self.initializer not in INITS:
            raise ValueError(f"Unknown initializer {self.initializer!r}; choose one of {INITS}.")
        act = ACTIVATIONS[self.activation]
        rebrac = self.initializer == "rebrac"
        for size in self.hidden_sizes:
            if rebrac:
                dense = nn.Dense(size, kernel_init=fan_in_uniform_init(),
                                 bias_init=nn.initializers.constant(HIDDEN_BIAS_REBRAC))
            else:
                dense = nn.Dense(size)
            x = act(dense(x))
            if self.layer_norm:
                x = nn.LayerNorm()(x)
        if rebrac:
            head = nn.Dense(self.out_dim, kernel_init=uniform_init(self.head_scale),
                            bias_init=uniform_init(self.head_scale))
        else:
            head = nn.Dense(self.out_dim)
        return head(x)


class DeterministicActor(nn.Module):
    """a = tanh(f(s)) in [-1, 1]^A (TD3+BC, ReBRAC, BC): [..., D] -> [..., A]."""

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False
    initializer: str = "flax"
    head_scale: float = 1e-3  # CORL/Unifloral ReBRAC actor: uniform_init(1e-3)

    @nn.compact
    def __call__(self, obs):
        out = MLP(self.action_dim, self.hidden_sizes, self.activation, self.layer_norm, self.initializer,
                  self.head_scale, name="mlp")(obs)
        return jnp.tanh(out)


class ValueNet(nn.Module):
    """V(s): [..., D] -> [...] (IQL's state-value function)."""

    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False
    initializer: str = "flax"
    head_scale: float = 3e-3

    @nn.compact
    def __call__(self, obs):
        return MLP(1, self.hidden_sizes, self.activation, self.layer_norm, self.initializer, self.head_scale,
                   name="mlp")(obs)[..., 0]


def ensemble_kernel_init(initializer: str):
    """Kernel init of an ensemble layer [N, in, out], member axis excluded from the fan-in."""
    if initializer == "rebrac":
        return fan_in_uniform_init()
    return nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal", batch_axis=(0,))


class EnsembleDense(nn.Module):
    """N independent Dense layers as one batched matmul: [..., in] or [N, ..., in] -> [N, ..., out].

    kernel [N, in, out], bias [N, out]; each member initialised as `nn.Dense` would be (the member
    axis is a batch axis of the initializer), without `nn.vmap` (whose vmapped parameter
    initialisation costs several times the compile time of a plain one).
    """

    features: int
    num_members: int
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros
    member_axis_in: bool = True  # whether x already carries the leading [N] axis

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", self.kernel_init, (self.num_members, x.shape[-1], self.features))
        bias = self.param("bias", self.bias_init, (self.num_members, self.features))
        spec = "n...i,nio->n...o" if self.member_axis_in else "...i,nio->n...o"
        y = jnp.einsum(spec, x, kernel)
        return y + bias.reshape((self.num_members,) + (1,) * (y.ndim - 2) + (self.features,))


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over the last axis of [N, ..., h] with per-member scale and bias [N, h] (flax's eps 1e-6)."""

    num_members: int
    epsilon: float = 1e-6

    @nn.compact
    def __call__(self, x):
        h = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (self.num_members, h))
        bias = self.param("bias", nn.initializers.zeros, (self.num_members, h))
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
        shape = (self.num_members,) + (1,) * (x.ndim - 2) + (h,)
        return (x - mean) * jax.lax.rsqrt(var + self.epsilon) * scale.reshape(shape) + bias.reshape(shape)


class CriticEnsemble(nn.Module):
    """`num_critics` independent Q_j(s, a) MLPs over concat(s, a): ([..., D], [..., A]) -> [N, ...].

    Parameters carry a leading [num_critics] axis (as CORL's `EnsembleCritic` with `nn.vmap` and
    lfx.rl's `QEnsemble`), so twin critics and SAC-N/EDAC ensembles are one module; the layers are
    `EnsembleDense` / `EnsembleLayerNorm` (batched matmuls), the same function as N separate MLPs.
    """

    num_critics: int = 2
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False
    initializer: str = "flax"
    head_scale: float = 3e-3  # CORL/Unifloral ReBRAC critic: uniform_init(3e-3)

    @nn.compact
    def __call__(self, obs, action):
        if self.initializer not in INITS:
            raise ValueError(f"Unknown initializer {self.initializer!r}; choose one of {INITS}.")
        act = ACTIVATIONS[self.activation]
        rebrac = self.initializer == "rebrac"
        bias_init = nn.initializers.constant(HIDDEN_BIAS_REBRAC) if rebrac else nn.initializers.zeros
        x = jnp.concatenate([obs, action], axis=-1)
        for i, size in enumerate(self.hidden_sizes):
            x = act(EnsembleDense(size, self.num_critics, ensemble_kernel_init(self.initializer), bias_init,
                                  member_axis_in=i > 0)(x))
            if self.layer_norm:
                x = EnsembleLayerNorm(self.num_critics)(x)
        if rebrac:
            head = EnsembleDense(1, self.num_critics, uniform_init(self.head_scale), uniform_init(self.head_scale),
                                 member_axis_in=bool(self.hidden_sizes))
        else:
            head = EnsembleDense(1, self.num_critics, ensemble_kernel_init("flax"), nn.initializers.zeros,
                                 member_axis_in=bool(self.hidden_sizes))
        return head(x)[..., 0]


class GaussianActor(nn.Module):
    """pi(a | s) = N(tanh(f(s)), exp(log_std)^2), log_std a state-independent parameter (init 0),
    clipped to [log_std_min, log_std_max] (IQL: Kostrikov's `NormalTanhPolicy` with
    `tanh_squash_distribution=False`; CORL `algorithms/offline/iql.py` `GaussianPolicy`; Unifloral
    `algorithms/iql.py` `TanhGaussianActor`). The density is an unsquashed Gaussian over a, so
    dataset actions at the bounds have finite log-probability; `Policy.mode()` = tanh(f(s)).
    """

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False
    log_std_min: float = -20.0  # CORL / Unifloral LOG_STD_MIN
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, obs):
        mean = jnp.tanh(MLP(self.action_dim, self.hidden_sizes, self.activation, self.layer_norm,
                            name="mlp")(obs))
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        log_std = jnp.clip(log_std, self.log_std_min, self.log_std_max)
        return Policy(mean=mean, log_std=jnp.broadcast_to(log_std, mean.shape))


class ConditionalVAE(nn.Module):
    """A state-conditional VAE of actions (BCQ's behaviour model, Fujimoto et al. 2019, arXiv:1812.02900;
    A2PR's `VAE` in ltlhuuu/A2PR `A2PR.py`):

        encode(s, a) -> (mean, log_std)        [..., L] each, log_std clipped to [log_std_min, log_std_max]
        decode(s, z) -> tanh(g(s, z))           [..., A], in [-1, 1]^A
        __call__(s, a, key) -> (decode(s, mean + exp(log_std) eps), mean, log_std),  eps ~ N(0, I) from key

    Encoder and decoder are MLPs over the concatenations (s, a) and (s, z); the encoder's last layer
    gives mean and log_std as the two halves of one Dense (the authors' two heads on a shared trunk).
    Defaults are the authors' (hidden (750, 750), log_std clamped to [-4, 15]); flax's initialisation.
    """

    action_dim: int
    latent_dim: int
    hidden_sizes: Sequence[int] = (750, 750)
    activation: str = "relu"
    log_std_min: float = -4.0
    log_std_max: float = 15.0

    def setup(self):
        self.encoder = MLP(2 * self.latent_dim, self.hidden_sizes, self.activation)
        self.decoder = MLP(self.action_dim, self.hidden_sizes, self.activation)

    def encode(self, obs, action):
        mean, log_std = jnp.split(self.encoder(jnp.concatenate([obs, action], axis=-1)), 2, axis=-1)
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)

    def decode(self, obs, z):
        return jnp.tanh(self.decoder(jnp.concatenate([obs, z], axis=-1)))

    def __call__(self, obs, action, key):
        mean, log_std = self.encode(obs, action)
        z = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
        return self.decode(obs, z), mean, log_std
