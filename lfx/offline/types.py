"""The types every offline-RL algorithm in lfx.offline shares: a minibatch, the problem's spec, static settings.

An algorithm module (`lfx/offline/td3_bc.py`, `iql.py`, ...) is a namespace with the same five names,
so the one recipe (`lfx.offline.recipe.make_train`) runs any of them:

    HParams                       traced floats of the algorithm (lr, gamma, tau, alpha, ...), `validate()`
    AgentState                    a flax.struct pytree: params, target params, optimiser states, step
    init(key, spec, config, hparams) -> AgentState
    update(agent, batch, key, spec, config, hparams) -> (agent, metrics)   one gradient step
    act(agent, obs, spec, config) -> action                                 deterministic, for evaluation

`metrics` is a flat dict of scalars named "train/<name>" (e.g. "train/critic_loss", "train/q_mean").
Everything is jittable and vmappable over keys, HParams batches and datasets.

Shapes: B = batch size, D = observation size, A = action dimension (continuous actions are in
[-1, 1]^A, the env's bounds mapped affinely; discrete actions are int32 indices in [0, num_actions)).
"""

from __future__ import annotations

import dataclasses

import jax
from flax import struct


@struct.dataclass
class Batch:
    """A minibatch of transitions (s, a, r, s', a', done), leading axis B.

    observations: [B, D] float32 (normalised by the recipe when `config.normalize_obs`).
    actions: [B, A] float32 in [-1, 1], or [B] int32 for discrete actions.
    rewards: [B] float32.
    next_observations: [B, D] float32.
    next_actions: like `actions`: the dataset's action at s' (ReBRAC's critic penalty); at the last
      step of an episode it repeats `actions` (never used there with weight, as done or timeout ends it).
    dones: [B] float32, 1.0 where s' is terminal (no bootstrap). Timeouts are NOT dones: a truncated
      episode bootstraps from s', as D4RL keeps `timeouts` apart from `terminals`.
    """

    observations: jax.Array
    actions: jax.Array
    rewards: jax.Array
    next_observations: jax.Array
    next_actions: jax.Array
    dones: jax.Array


@dataclasses.dataclass(frozen=True)
class Spec:
    """What an algorithm needs to know about the problem (static)."""

    obs_dim: int
    action_dim: int  # A for continuous actions; 1 for discrete
    discrete: bool = False
    num_actions: int = 0  # discrete only


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Static settings shared by the algorithms (network shapes and loop structure).

    hidden_sizes: MLP widths of actor, critics and value nets (CORL / Unifloral: (256, 256)).
    num_critics: size of the critic ensemble (2 for TD3+BC, IQL, CQL, ReBRAC; N for SAC-N / EDAC).
    critic_layer_norm: LayerNorm after each hidden layer of the critics (ReBRAC uses it).
    actor_layer_norm: LayerNorm in the actor (ReBRAC: False on D4RL locomotion by default).
    policy_freq: update the actor and the targets every this many critic steps (TD3+BC, ReBRAC: 2).
    num_action_samples: actions sampled per state in CQL's log-sum-exp (CORL: 10).
    """

    hidden_sizes: tuple[int, ...] = (256, 256)
    num_critics: int = 2
    critic_layer_norm: bool = False
    actor_layer_norm: bool = False
    policy_freq: int = 2
    num_action_samples: int = 10

    def validate(self) -> None:
        if not self.hidden_sizes or any(h <= 0 for h in self.hidden_sizes):
            raise ValueError(f"agent.hidden_sizes must be non-empty positive widths, got {self.hidden_sizes}.")
        if self.num_critics < 1:
            raise ValueError(f"agent.num_critics must be >= 1, got {self.num_critics}.")
        if self.policy_freq < 1:
            raise ValueError(f"agent.policy_freq must be >= 1, got {self.policy_freq}.")
        if self.num_action_samples < 1:
            raise ValueError(f"agent.num_action_samples must be >= 1, got {self.num_action_samples}.")
