"""A GRU actor-critic scanned over time, its hidden state reset where an episode began.

PureJaxRL's `ScannedRNN` / `ActorCriticRNN` (Lu et al. 2022, arXiv:2210.05639, `purejaxrl/ppo_rnn.py`):
an embedding Dense(128) + ReLU, a GRU (Cho et al. 2014, arXiv:1406.1078) of width 128, then separate
actor and critic heads Dense(128) + ReLU -> logits / value. The GRU cell (flax `nn.GRUCell`) is

    r = sigmoid(W_ir x + W_hr h + b_r),  z = sigmoid(W_iz x + W_hz h + b_z),
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h,

and the scan over time resets the carry before a step whose `reset` flag is set:

    h_t^- = 0 if reset_t else h_{t-1},   h_t = GRU(h_t^-, embed(obs_t)),   (pi_t, V_t) = heads(h_t).

`reset_t` is "obs_t is the first observation of an episode" (the previous step ended one), so the
policy never carries memory across episodes. Shapes: obs [T, N, D], reset [T, N] bool, hidden [N, H];
outputs a `Policy` over [T, N] and values [T, N], and the hidden state after step T - 1 ([N, H]).

With `memory=False` the carry is reset at every step: the same parameters, but a feed-forward
function of the current observation (the ablation that shows what the memory is for).

Weights: orthogonal (gain sqrt(2) on the embedding, 2 on the heads' hidden layers as PureJaxRL has
them, 0.01 on the logits, 1 on the value) and the GRU's recurrent kernels orthogonal, all from
`lfx.utils.initializers.orthogonal` (no LAPACK, safe under vmap on CPU).

`ActorCriticRNN.apply(params, obs_seq, method="act")` is the greedy policy of ONE episode from its
start (obs [T, D] or [T, N, D] -> actions [T] / [T, N], the hidden state starting at zeros): what
`lfx.rl.evaluation.export_policy` / `load_policy` call. Stepping an env needs the hidden state
carried by the caller: `ppo_rnn.evaluate_recurrent`.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lfx.rl.networks import ACTIVATIONS, Policy
from lfx.utils.initializers import orthogonal


def initialize_carry(batch_size: int, hidden_size: int) -> jax.Array:
    """The GRU's initial (and reset) hidden state: zeros [batch_size, hidden_size]."""
    return jnp.zeros((batch_size, hidden_size), jnp.float32)


class ScannedGRU(nn.Module):
    """`nn.GRUCell` scanned over the leading (time) axis with resets; parameters shared over time.

    `__call__(hidden [N, H], (x [T, N, F], reset [T, N])) -> (hidden after the last step [N, H],
    outputs [T, N, H])` (a GRU's output is its hidden state).
    """

    hidden_size: int

    @functools.partial(
        nn.scan, variable_broadcast="params", in_axes=0, out_axes=0, split_rngs={"params": False}
    )
    @nn.compact
    def __call__(self, carry, inputs):
        x, reset = inputs
        carry = jnp.where(reset[:, None], jnp.zeros_like(carry), carry)
        carry, y = nn.GRUCell(self.hidden_size, recurrent_kernel_init=orthogonal(1.0), name="cell")(carry, x)
        return carry, y


class ActorCriticRNN(nn.Module):
    """Embedding -> GRU -> actor and critic heads (module doc); `__call__(hidden, obs, reset)`.

    Attributes:
      action_dim: number of discrete actions, or the dimension of a continuous action.
      discrete: categorical head if True, else a diagonal Gaussian (state-independent log std).
      hidden_size: the GRU's width H.
      embed_size, head_size: widths of the embedding and of each head's hidden layer.
      activation: of the embedding and the heads (PureJaxRL: "relu").
      memory: False resets the hidden state at every step (the feed-forward ablation).
    """

    action_dim: int
    discrete: bool = True
    hidden_size: int = 128
    embed_size: int = 128
    head_size: int = 128
    activation: str = "relu"
    memory: bool = True

    @nn.compact
    def __call__(self, hidden, obs, reset):
        """hidden [N, H], obs [T, N, D], reset [T, N] -> (hidden [N, H], Policy [T, N], value [T, N])."""
        act = ACTIVATIONS[self.activation]
        if not self.memory:
            reset = jnp.ones_like(reset)
        x = act(nn.Dense(self.embed_size, kernel_init=orthogonal(np.sqrt(2)), name="embed")(obs))
        hidden, y = ScannedGRU(self.hidden_size, name="gru")(hidden, (x, reset))
        actor = act(nn.Dense(self.head_size, kernel_init=orthogonal(2.0), name="actor_hidden")(y))
        critic = act(nn.Dense(self.head_size, kernel_init=orthogonal(2.0), name="critic_hidden")(y))
        out = nn.Dense(self.action_dim, kernel_init=orthogonal(0.01), name="actor_out")(actor)
        value = nn.Dense(1, kernel_init=orthogonal(1.0), name="critic_out")(critic)[..., 0]
        if self.discrete:
            return hidden, Policy(logits=out), value
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return hidden, Policy(mean=out, log_std=jnp.broadcast_to(log_std, out.shape)), value

    def act(self, obs):
        """Greedy actions of one episode's observations from its start: [T, D] -> [T] ([T, N, D] -> [T, N])."""
        single = obs.ndim == 2
        if single:
            obs = obs[:, None]
        reset = jnp.zeros(obs.shape[:2], bool)
        _, pi, _ = self(initialize_carry(obs.shape[1], self.hidden_size), obs, reset)
        action = pi.mode()
        return action[:, 0] if single else action
