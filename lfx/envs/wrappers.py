"""Environment wrappers with gymnax 1.0 semantics (6-value `step`, auto-reset, state carried).

Every wrapper wraps ONE environment (the caller vmaps over a batch of them), keeps whatever it needs
in the returned state (so the whole thing scans and vmaps) and forwards unknown attributes to the
wrapped environment. Wrappers compose: `EpisodeStatistics(NormalizeObservation(env))`.

Running statistics (`NormalizeObservation`, `NormalizeReward`) are pooled over the batch when the
wrapper is given an `axis_name` and the caller vmaps with that name
(`jax.vmap(env.step, axis_name=ENV_AXIS)`): every environment of the batch then carries the same
statistics, those of the concatenated batch, as brax's and PureJaxRL's PPO normalise. With
`axis_name=None` they are per environment instance, as in gymnasium's wrappers of the same name —
which trains one policy under N different normalisations (on brax `inverted_pendulum` that alone
held PPO at a return of about 80; see docs/RESULTS.md).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

ENV_AXIS = "envs"
"""The vmap axis name over a batch of environments, over which the normalisers pool statistics."""


class Wrapper:
    """Base class: forwards `reset`, `step` and every other attribute to the wrapped env."""

    def __init__(self, env: Any):
        self._env = env

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    def reset(self, key: jax.Array, params: Any = None):
        return self._env.reset(key, params)

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None):
        return self._env.step(key, state, action, params)


# ---------------------------------------------------------------------------------------------
# Episode statistics.


@struct.dataclass
class EpisodeStatisticsState:
    env_state: Any
    episode_return: jax.Array  # [] running return of the current episode
    episode_length: jax.Array  # [] running length of the current episode


class EpisodeStatistics(Wrapper):
    """Adds the return and length of each finished episode to `info`.

    `info["episode_done"]` is True on the step that ended an episode (terminated or truncated);
    `info["episode_return"]` / `info["episode_length"]` hold that episode's undiscounted return and
    length on that step (and 0 elsewhere), so a mean over finished episodes is
    `sum(return * done) / max(sum(done), 1)`.
    """

    def reset(self, key, params=None):
        obs, env_state = self._env.reset(key, params)
        return obs, EpisodeStatisticsState(env_state, jnp.float32(0.0), jnp.int32(0))

    def step(self, key, state, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params
        )
        done = jnp.logical_or(terminated, truncated)
        ep_return = state.episode_return + reward.astype(jnp.float32)
        ep_length = state.episode_length + 1
        info = {
            **info,
            "episode_done": done,
            "episode_return": jnp.where(done, ep_return, 0.0),
            "episode_length": jnp.where(done, ep_length, 0),
        }
        state = EpisodeStatisticsState(
            env_state,
            jnp.where(done, 0.0, ep_return),
            jnp.where(done, 0, ep_length),
        )
        return obs, state, reward, terminated, truncated, info


# ---------------------------------------------------------------------------------------------
# Running mean / variance (Chan et al. parallel update), shared by the two normalisers.


@struct.dataclass
class RunningMeanStd:
    mean: jax.Array
    var: jax.Array
    count: jax.Array  # [] float32, starts at a small epsilon as in gymnasium

    @classmethod
    def create(cls, shape: tuple[int, ...]) -> RunningMeanStd:
        return cls(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), jnp.float32(1e-4))

    def update(self, x: jax.Array) -> RunningMeanStd:
        """Folds one sample `x` (same shape as `mean`) into the statistics."""
        delta = x - self.mean
        count = self.count + 1.0
        mean = self.mean + delta / count
        m2 = self.var * self.count + jnp.square(delta) * self.count / count
        return RunningMeanStd(mean, m2 / count, count)

    def update_batch(self, x: jax.Array, axis_name: str | None = None) -> RunningMeanStd:
        """Folds a batch into the statistics (Chan et al. 1979, the parallel variance update).

        With `axis_name=None`, `x` has the shape of `mean` and is one sample (`update`). With an
        axis name, `x` is this vmap lane's sample and the batch is every lane of that named axis:
        its mean, variance and count come from `pmean`/`psum`, so each lane ends with the
        statistics of the concatenated batch (m lanes: count + m, the pooled mean and variance).
        """
        if axis_name is None:
            return self.update(x)
        n = jax.lax.psum(jnp.float32(1.0), axis_name)
        batch_mean = jax.lax.pmean(x, axis_name)
        batch_var = jax.lax.pmean(jnp.square(x - batch_mean), axis_name)
        delta = batch_mean - self.mean
        count = self.count + n
        mean = self.mean + delta * n / count
        m2 = self.var * self.count + batch_var * n + jnp.square(delta) * self.count * n / count
        return RunningMeanStd(mean, m2 / count, count)


@struct.dataclass
class NormalizeObservationState:
    env_state: Any
    obs_stats: RunningMeanStd


def normalize(stats: RunningMeanStd, obs: jax.Array, epsilon: float = 1e-8) -> jax.Array:
    """(obs - mean) / sqrt(var + eps): what `NormalizeObservation` emits, for frozen statistics."""
    return (obs - stats.mean) / jnp.sqrt(stats.var + epsilon)


class NormalizeObservation(Wrapper):
    """Returns `(obs - mean) / sqrt(var + eps)` with running statistics carried in the state.

    The statistics are updated with every observation the wrapper emits (reset and step), before
    normalising it, as gymnasium's `NormalizeObservation` does; pooled over the vmap axis
    `axis_name` when given (module docstring). `observation_stats(env_state)` reads them back,
    e.g. to evaluate or export a policy under the frozen statistics (`normalize`).
    """

    def __init__(self, env: Any, epsilon: float = 1e-8, axis_name: str | None = None):
        super().__init__(env)
        self.epsilon = epsilon
        self.axis_name = axis_name

    def _normalize(self, stats: RunningMeanStd, obs: jax.Array) -> jax.Array:
        return normalize(stats, obs, self.epsilon)

    def reset(self, key, params=None):
        obs, env_state = self._env.reset(key, params)
        stats = RunningMeanStd.create(obs.shape).update_batch(obs, self.axis_name)
        return self._normalize(stats, obs), NormalizeObservationState(env_state, stats)

    def step(self, key, state, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params
        )
        stats = state.obs_stats.update_batch(obs, self.axis_name)
        if "final_observation" in info:
            info = {**info, "final_observation": self._normalize(stats, info["final_observation"])}
        return (
            self._normalize(stats, obs),
            NormalizeObservationState(env_state, stats),
            reward,
            terminated,
            truncated,
            info,
        )


@struct.dataclass
class NormalizeRewardState:
    env_state: Any
    discounted_return: jax.Array  # [] running discounted return, reset at episode ends
    return_stats: RunningMeanStd


class NormalizeReward(Wrapper):
    """Scales rewards by the running standard deviation of the discounted return.

    r_t / sqrt(Var[G_t] + eps) with G_t = gamma * G_{t-1} * (1 - done_{t-1}) + r_t, the scheme of
    gymnasium's `NormalizeReward` (and of PPO implementations since Engstrom et al. 2020,
    "Implementation Matters in Deep Policy Gradients", arXiv:2005.12729). The raw reward stays in
    `info["raw_reward"]`. Statistics pooled over the vmap axis `axis_name` when given.
    """

    def __init__(self, env: Any, gamma: float = 0.99, epsilon: float = 1e-8,
                 axis_name: str | None = None):
        super().__init__(env)
        self.gamma = gamma
        self.epsilon = epsilon
        self.axis_name = axis_name

    def reset(self, key, params=None):
        obs, env_state = self._env.reset(key, params)
        return obs, NormalizeRewardState(env_state, jnp.float32(0.0), RunningMeanStd.create(()))

    def step(self, key, state, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params
        )
        done = jnp.logical_or(terminated, truncated)
        g = state.discounted_return * self.gamma + reward
        stats = state.return_stats.update_batch(g, self.axis_name)
        scaled = reward / jnp.sqrt(stats.var + self.epsilon)
        state = NormalizeRewardState(env_state, jnp.where(done, 0.0, g), stats)
        return obs, state, scaled, terminated, truncated, {**info, "raw_reward": reward}


def observation_stats(env_state: Any) -> RunningMeanStd | None:
    """The `NormalizeObservation` statistics inside a (possibly batched) wrapped env state.

    Walks the `env_state` chain of the wrappers; returns None when no `NormalizeObservation` is
    in it. For a batch pooled over an axis name every lane holds the same statistics; take one
    with `jax.tree.map(lambda x: x[0], stats)`.
    """
    while env_state is not None:
        if isinstance(env_state, NormalizeObservationState):
            return env_state.obs_stats
        env_state = getattr(env_state, "env_state", None)
    return None


class ClipAction(Wrapper):
    """Clips continuous actions to the action space's [low, high] before stepping."""

    def __init__(self, env: Any, low: float | None = None, high: float | None = None):
        super().__init__(env)
        self.low = low
        self.high = high

    def step(self, key, state, action, params=None):
        space = self._env.action_space(params if params is not None else self._env.default_params)
        low = space.low if self.low is None else self.low
        high = space.high if self.high is None else self.high
        return self._env.step(key, state, jnp.clip(action, low, high), params)


class FlattenObservation(Wrapper):
    """Flattens observations (e.g. MinAtar's [10, 10, C] grids) to one vector."""

    def observation_space(self, params):
        space = self._env.observation_space(params)
        size = 1
        for d in space.shape:
            size *= d
        return spaces.Box(jnp.min(space.low), jnp.max(space.high), (size,), space.dtype)

    def reset(self, key, params=None):
        obs, state = self._env.reset(key, params)
        return jnp.reshape(obs, (-1,)), state

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        if "final_observation" in info:
            info = {**info, "final_observation": jnp.reshape(info["final_observation"], (-1,))}
        return jnp.reshape(obs, (-1,)), state, reward, terminated, truncated, info
