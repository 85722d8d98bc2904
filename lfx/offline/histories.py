"""Offline RL on observation histories: history windows of a dataset, the env wrapper that keeps the same
window, a history encoder phi(h), and the bisimulation loss on phi (Hong, Dragan & Levine 2024,
"Offline RL with Observation Histories: Analyzing and Improving Sample Complexity", ICLR 2024,
arXiv:2310.20663).

    hist = history_batches(data, keep=(0, 1), history_length=4)   # Pendulum without angular velocity
    hist.observations                                              # [N, H, D'] (D' = len(keep) + 1)
    env = HistoryObservation(MaskObservation(env, keep=(0, 1), params=params), history_length=4)

A history window of row i holds the masked observations of its episode's steps i - H + 1 .. i, oldest
first; slots before the episode's first step are zero and flagged invalid. Every frame carries that
flag as its last channel (1 = a real observation, 0 = padding), so D' = len(keep) + 1 and the windows
stay one array: the `Batch` of `lfx.offline.types` carries them unchanged and the encoder reads the
mask from the frame. The next window of row i is the window of step i + 1 of the same episode (the
window shifted by one, with row i's masked `next_observations` as its newest frame), also at an
episode's last row (terminal or timeout), so a timeout bootstraps from a well-formed next history.

The bisimulation loss (`bisimulation_loss`) is the paper's objective for a compact history
representation; see its docstring for what the paper's text confirms and what is reconstructed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

from lfx.envs.wrappers import Wrapper
from lfx.offline.dataset import Dataset, next_actions
from lfx.offline.types import Batch

PENDULUM_KEEP = (0, 1)  # (cos theta, sin theta): Pendulum-v1 without its angular velocity


# ---------------------------------------------------------------------------------------------
# History windows of a dataset.


def episode_starts(ends: jax.Array) -> jax.Array:
    """[N] int32: the row at which each row's episode starts (`ends` [N] bool: a new episode follows)."""
    n = ends.shape[0]
    rows = jnp.arange(n, dtype=jnp.int32)
    is_start = jnp.concatenate([jnp.ones((1,), bool), ends[:-1].astype(bool)])
    return jax.lax.cummax(jnp.where(is_start, rows, 0))


def history_windows(obs: jax.Array, ends: jax.Array, history_length: int) -> tuple[jax.Array, jax.Array]:
    """The window of the last H observations of each row's episode, zero-padded at its start.

    Args:
      obs: [N, D] observations in collection order (episodes contiguous).
      ends: [N] bool, True where an episode ends (terminal or timeout).
      history_length: H.
    Returns:
      (windows [N, H, D], valid [N, H] bool): slot t of row i is step i - H + 1 + t, valid iff it lies
      in row i's episode; invalid slots are zero.
    """
    chex.assert_rank(obs, 2)
    n = obs.shape[0]
    start = episode_starts(ends)
    idx = jnp.arange(n)[:, None] - (history_length - 1) + jnp.arange(history_length)[None, :]  # [N, H]
    valid = idx >= start[:, None]
    windows = jnp.where(valid[..., None], obs[jnp.clip(idx, 0, n - 1)], 0.0)
    return windows, valid


def with_valid_channel(windows: jax.Array, valid: jax.Array) -> jax.Array:
    """[..., H, D] windows and [..., H] flags -> [..., H, D + 1], the flag as the last channel."""
    return jnp.concatenate([windows, valid[..., None].astype(windows.dtype)], axis=-1)


def history_batches(data: Dataset, *, keep: Sequence[int] = PENDULUM_KEEP, history_length: int = 4) -> Batch:
    """The dataset as one `Batch` of N history transitions (the masked, partially observed variant).

    observations      [N, H, D'] the window of row i's masked observations, D' = len(keep) + 1 (the
                                 last channel 1 on real frames, 0 on padding)
    next_observations [N, H, D'] the window of step i + 1: observations[i] shifted by one frame, row
                                 i's masked next_observations appended (valid) as the newest
    actions, rewards, next_actions, dones: as `dataset.to_batches` (dones = terminals; timeouts bootstrap).
    """
    index = jnp.asarray(np.asarray(keep, np.int32))
    obs = jnp.take(jnp.asarray(data.observations, jnp.float32), index, axis=-1)
    nxt = jnp.take(jnp.asarray(data.next_observations, jnp.float32), index, axis=-1)
    ends = jnp.asarray(np.asarray(data.terminals, bool) | np.asarray(data.timeouts, bool))
    windows, valid = history_windows(obs, ends, history_length)
    next_windows = jnp.concatenate([windows[:, 1:], nxt[:, None]], axis=1)
    next_valid = jnp.concatenate([valid[:, 1:], jnp.ones_like(valid[:, :1])], axis=1)
    return Batch(
        observations=with_valid_channel(windows, valid),
        actions=jnp.asarray(data.actions, jnp.float32),
        rewards=jnp.asarray(data.rewards, jnp.float32),
        next_observations=with_valid_channel(next_windows, next_valid),
        next_actions=jnp.asarray(next_actions(data), jnp.float32),
        dones=jnp.asarray(data.terminals, jnp.float32),
    )


# ---------------------------------------------------------------------------------------------
# The env wrapper that keeps the same window.


@struct.dataclass
class HistoryObservationState:
    env_state: Any
    window: jax.Array  # [H, D + 1] the current history window (valid flag as the last channel)


def push(window: jax.Array, obs: jax.Array) -> jax.Array:
    """[H, D + 1] window, [D] observation -> the window with `obs` (valid) as its newest frame."""
    frame = jnp.concatenate([obs, jnp.ones((1,), obs.dtype)])
    return jnp.concatenate([window[1:], frame[None]], axis=0)


class HistoryObservation(Wrapper):
    """Observes the window of the last H observations of the current episode: [D] -> [H, D + 1].

    Frames are oldest first; slots before the episode's first step are zeros with a 0 in the last
    (valid) channel, real frames carry a 1 there (`history_batches`' layout, so a policy trained on a
    dataset's windows runs here unchanged). On an auto-reset the window restarts from the new
    episode's first observation; `info["final_observation"]` is the finished episode's window with
    its final observation pushed (the dataset's next window of an episode's last row).
    """

    def __init__(self, env: Any, history_length: int, params: Any = None):
        super().__init__(env)
        if history_length < 1:
            raise ValueError(f"history_length must be >= 1, got {history_length}.")
        space = env.observation_space(params if params is not None else env.default_params)
        if len(space.shape) != 1:
            raise ValueError(f"HistoryObservation needs a vector observation, got shape {space.shape}.")
        self.history_length = history_length
        self.obs_dim = space.shape[0]

    def observation_space(self, params):
        space = self._env.observation_space(params)
        low = jnp.min(jnp.asarray(space.low))
        high = jnp.max(jnp.asarray(space.high))
        return spaces.Box(jnp.minimum(low, 0.0), jnp.maximum(high, 1.0),
                          (self.history_length, self.obs_dim + 1), space.dtype)

    def empty(self, dtype=jnp.float32) -> jax.Array:
        return jnp.zeros((self.history_length, self.obs_dim + 1), dtype)

    def reset(self, key, params=None):
        obs, env_state = self._env.reset(key, params)
        window = push(self.empty(obs.dtype), obs)
        return window, HistoryObservationState(env_state, window)

    def step(self, key, state, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(key, state.env_state, action, params)
        done = jnp.logical_or(terminated, truncated)
        final = push(state.window, info["final_observation"]) if "final_observation" in info else None
        window = jnp.where(done, push(self.empty(obs.dtype), obs), push(state.window, obs))
        if final is not None:
            info = {**info, "final_observation": final}
        return window, HistoryObservationState(env_state, window), reward, terminated, truncated, info


# ---------------------------------------------------------------------------------------------
# The history encoder.

ENCODERS = ("gru", "mlp")


class HistoryEncoder(nn.Module):
    """phi(h): a window [..., H, D'] (valid flag last) -> a representation [..., latent_dim].

    "gru": a GRU (flax.linen.GRUCell) run over the H frames, oldest first, its carry left unchanged on
      padding frames (so a short history is encoded as if it had no padding), then Dense(latent_dim).
    "mlp": an MLP over the flattened window (the feed-forward baseline; it sees the flags as inputs).
    """

    latent_dim: int = 64
    kind: str = "gru"
    hidden_size: int = 128

    @nn.compact
    def __call__(self, h):
        if self.kind not in ENCODERS:
            raise ValueError(f"Unknown history encoder {self.kind!r}; choose one of {ENCODERS}.")
        if self.kind == "mlp":
            x = jnp.reshape(h, h.shape[:-2] + (-1,))
            x = nn.relu(nn.Dense(self.hidden_size)(x))
            return nn.Dense(self.latent_dim)(x)
        cell = nn.GRUCell(self.hidden_size)
        carry = jnp.zeros(h.shape[:-2] + (self.hidden_size,), h.dtype)
        for t in range(h.shape[-2]):  # H is small and static
            frame = h[..., t, :]
            new, _ = cell(carry, frame)
            carry = jnp.where(frame[..., -1:] > 0.5, new, carry)
        return nn.Dense(self.latent_dim)(carry)


# ---------------------------------------------------------------------------------------------
# The bisimulation loss.


def l1_distance(x: jax.Array, y: jax.Array) -> jax.Array:
    """||x - y||_1 over the last axis ([..., K] -> [...]); its subgradient at x = y is 0 (no NaN)."""
    return jnp.sum(jnp.abs(x - y), axis=-1)


def bisimulation_loss(
    z_i: jax.Array, z_j: jax.Array, r_i: jax.Array, r_j: jax.Array, next_z_i: jax.Array, next_z_j: jax.Array,
    mask: jax.Array | None = None, *, gamma,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_bisim = mean_b (||z_i - z_j||_1 - sg(|r_i - r_j| + gamma ||z'_i - z'_j||_1))^2.

    The paper (Hong, Dragan & Levine 2024, arXiv:2310.20663) measures how compact phi is by a
    bisimulation loss: two histories should be as far apart in phi as their rewards differ plus gamma
    times the distance of their next-representation distributions, and proposes adding it to a
    standard offline RL objective. What its public text (the abstract) confirms is that idea; the
    paper's body and code were not found by this implementation's author, so the exact form is a
    reconstruction after Deep Bisimulation for Control (Zhang et al. 2021, arXiv:2006.10742, the
    loss the bisimulation-representation literature uses), with two simplifications stated here:
      * the next-representation "distribution" is the deterministic phi'(h') of a target encoder (the
        dataset's successor, not a learned latent dynamics model), so the W_2 distance of two Dirac
        masses is the plain distance ||z'_i - z'_j||;
      * rewards are the dataset's r_i, r_j (not a learned reward model's predictions).
    The target |r_i - r_j| + gamma d(z'_i, z'_j) is stop-gradient (as DBC detaches it); the distance is
    L1 (DBC's choice, and its subgradient at 0 is finite). Pairs (i, j) are formed by the caller
    (e.g. the batch and a permutation of it).

    Identity: the loss is 0 iff ||z_i - z_j|| = |r_i - r_j| + gamma ||z'_i - z'_j|| on every pair.

    Args:
      z_i, z_j: [B, K] phi(h_i), phi(h_j) (differentiable).
      r_i, r_j: [B] rewards.
      next_z_i, next_z_j: [B, K] phi'(h'_i), phi'(h'_j) (gradient stopped).
      mask: optional [B] weights of the pairs (a weighted mean).
      gamma: the discount of the bisimulation recursion (may be traced).
    Returns:
      (loss [], metrics {"train/bisim_loss", "train/bisim_latent_dist", "train/bisim_target_dist"}).
    """
    chex.assert_rank([z_i, z_j, next_z_i, next_z_j, r_i, r_j], [2, 2, 2, 2, 1, 1])
    chex.assert_equal_shape([z_i, z_j, next_z_i, next_z_j])
    dist = l1_distance(z_i, z_j)
    target = jax.lax.stop_gradient(jnp.abs(r_i - r_j) + gamma * l1_distance(next_z_i, next_z_j))
    err = (dist - target) ** 2
    if mask is None:
        mask = jnp.ones_like(err)
    weights = mask / jnp.maximum(jnp.sum(mask), 1e-8)
    loss = jnp.sum(weights * err)
    return loss, {"train/bisim_loss": loss, "train/bisim_latent_dist": jnp.sum(weights * dist),
                  "train/bisim_target_dist": jnp.sum(weights * target)}
