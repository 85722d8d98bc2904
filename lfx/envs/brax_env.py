"""brax environments behind lfx's gymnax-1.0 API (continuous actions in [-1, 1]).

`make_brax("hopper", backend="spring")` returns `(env, params)` where `env.reset(key, params)` and
`env.step(key, state, action, params)` follow gymnax 1.0 semantics: brax's `done` is `terminated`,
the episode length limit in `params.max_steps_in_episode` gives `truncated`, and the base class
auto-resets. brax is an optional extra (`pip install -e ".[brax]"`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class BraxEnvState:
    pipeline: Any  # brax.envs.base.State
    time: jax.Array


@struct.dataclass
class BraxEnvParams:
    max_steps_in_episode: int = 1000


class BraxEnv(environment.Environment):
    """Adapts a `brax.envs.Env` to gymnax 1.0 semantics."""

    def __init__(self, brax_env: Any, name: str):
        super().__init__()
        self._brax = brax_env
        self._name = name

    @property
    def name(self) -> str:
        return f"brax/{self._name}"

    @property
    def default_params(self) -> BraxEnvParams:
        return BraxEnvParams()

    @property
    def num_actions(self) -> int:
        return self._brax.action_size

    def reset_env(self, key, params):
        pipeline = self._brax.reset(key)
        return pipeline.obs, BraxEnvState(pipeline, jnp.int32(0))

    def step_env(self, key, state, action, params):
        del key  # brax dynamics are deterministic given the action.
        pipeline = self._brax.step(state.pipeline, action)
        new_state = BraxEnvState(pipeline, state.time + 1)
        terminated = pipeline.done.astype(bool)
        return pipeline.obs, new_state, pipeline.reward, terminated, {}

    def is_terminated(self, state, params):
        return state.pipeline.done.astype(bool)

    def get_obs(self, state, params=None, key=None):
        return state.pipeline.obs

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (self._brax.action_size,), jnp.float32)

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (self._brax.observation_size,), jnp.float32)


def make_brax(name: str, backend: str = "spring", **kwargs: Any) -> tuple[BraxEnv, BraxEnvParams]:
    """Builds a brax environment by name (`backend` "spring" and "positional" compile fastest on CPU)."""
    try:
        from brax import envs as brax_envs  # noqa: PLC0415
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"lfx.envs.make('brax/{name}') needs brax: pip install -e '.[brax]' "
            "(or pip install 'brax>=0.12,<0.15')."
        ) from err
    max_steps = kwargs.pop("max_steps_in_episode", 1000)
    if name not in brax_envs._envs:  # noqa: SLF001 - brax keeps its registry private
        import difflib  # noqa: PLC0415

        close = difflib.get_close_matches(name, list(brax_envs._envs), n=5)  # noqa: SLF001
        raise ValueError(f"Unknown brax environment {name!r}. Close matches: {close}.")
    # brax's own auto-reset/episode wrappers are not applied: the gymnax base class does both.
    brax_env = brax_envs.get_environment(name, backend=backend, **kwargs)
    return BraxEnv(brax_env, name), BraxEnvParams(max_steps_in_episode=max_steps)
