"""Environment registry: every environment lfx knows, behind one `make(name, **kwargs)`.

Three families share gymnax 1.0 semantics (`reset(key, params) -> (obs, state)`,
`step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)`, auto-reset,
physics in `EnvParams`):

* every gymnax environment (classic control, MinAtar, bsuite, misc), by its gymnax name;
* brax environments as ``"brax/<name>"`` (needs the ``brax`` extra);
* lfx's own JAX environments, registered below as ``"module.path:factory"`` strings so that importing
  `lfx.envs` stays cheap. A factory is called with the user's keyword arguments and returns
  ``(env, env_params)``.

Keyword arguments of `make` that name a field of the environment's `EnvParams` override that field
(domain randomisation is then a `vmap` over params); the rest go to the environment's constructor.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any

import gymnax
import numpy as np

EnvFactory = Callable[..., tuple[Any, Any]]

# lfx's own environments. Later subsystems add a line here: "Name": "module.path:factory".
_LFX_ENVS: dict[str, str | EnvFactory] = {
    "AntMaze-sparse": "lfx.envs.sparse.ant_maze:make",
    "Curling-sparse": "lfx.envs.sparse.curling:make",
    "GFN-Hypergrid": "lfx.gfn.hypergrid:make_hypergrid",
    "GFN-BitSequence": "lfx.gfn.bitseq:make_bitseq",
    "GFN-Ising": "lfx.gfn.ising:make_ising",
    "GFN-Game24": "lfx.gfn.game24:make_game24",
    "HardMaze-sparse": "lfx.envs.sparse.hard_maze:make",
    "RedundantArm-sparse": "lfx.envs.sparse.redundant_arm:make",
    "PointMass-sparse": "lfx.envs.sparse.point_mass:make",
    "LPG-Tabular-Dense": "lfx.envs.gridworld:make_tabular_dense",
    "LPG-Tabular-Sparse": "lfx.envs.gridworld:make_tabular_sparse",
    "LPG-Tabular-LongHorizon": "lfx.envs.gridworld:make_tabular_long_horizon",
    "LPG-Tabular-LongerHorizon": "lfx.envs.gridworld:make_tabular_longer_horizon",
    "LPG-Tabular-LongDense": "lfx.envs.gridworld:make_tabular_long_dense",
    "LPG-Random-Dense": "lfx.envs.gridworld:make_random_dense",
    "LPG-Random-Small": "lfx.envs.gridworld:make_random_small",
    "LPG-Random-SmallSparse": "lfx.envs.gridworld:make_random_small_sparse",
    "LPG-Random-VeryDense": "lfx.envs.gridworld:make_random_very_dense",
}

# gymnax environments that fetch a data set from the internet when built: lfx defaults to offline,
# so `make` builds them only when asked with allow_download=True.
NEEDS_DOWNLOAD = {"MNISTBandit-bsuite": "MNIST"}

BRAX_PREFIX = "brax/"
BRAX_ENVS = (
    "ant",
    "halfcheetah",
    "hopper",
    "humanoid",
    "humanoidstandup",
    "inverted_pendulum",
    "inverted_double_pendulum",
    "pusher",
    "reacher",
    "walker2d",
)


def register(name: str, factory: str | EnvFactory) -> None:
    """Registers an environment factory under `name` (a callable or a "module:attr" string)."""
    if name in _LFX_ENVS or name in gymnax.registered_envs:
        raise ValueError(f"Environment name {name!r} is already registered.")
    _LFX_ENVS[name] = factory


def registered_envs() -> list[str]:
    """All names `make` accepts (brax names are listed even when brax is not installed)."""
    return (
        list(gymnax.registered_envs)
        + [BRAX_PREFIX + n for n in BRAX_ENVS]
        + sorted(_LFX_ENVS)
    )


def _resolve(factory: str | EnvFactory) -> EnvFactory:
    if callable(factory):
        return factory
    module, attr = factory.split(":")
    return getattr(importlib.import_module(module), attr)


def _split_param_overrides(params: Any, kwargs: dict[str, Any]) -> tuple[dict, dict]:
    fields = {f.name for f in dataclasses.fields(params)} if dataclasses.is_dataclass(params) else set()
    overrides = {k: v for k, v in kwargs.items() if k in fields}
    ctor = {k: v for k, v in kwargs.items() if k not in fields}
    for k, v in overrides.items():
        default = getattr(params, k)
        numeric = isinstance(default, (int, float, np.number)) or (
            hasattr(default, "dtype") and np.issubdtype(np.asarray(default).dtype, np.number))
        if numeric and not _is_numeric(v):
            raise ValueError(
                f"EnvParams.{k} must be a number (default {np.asarray(default).tolist()!r}), got {v!r}."
            )
    return overrides, ctor


def _is_numeric(v: Any) -> bool:
    if isinstance(v, (bool, str, bytes)) or v is None:
        return isinstance(v, bool)
    try:
        return np.issubdtype(np.asarray(v).dtype, np.number) or np.asarray(v).dtype == bool
    except (TypeError, ValueError):
        return False


def _build(name: str, factory: Callable[..., Any], params_fields: list[str], **ctor: Any):
    """Calls a constructor, turning an unknown keyword into a ValueError that lists the known ones."""
    try:
        return factory(**ctor)
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        try:
            accepted = [n for n, p in inspect.signature(factory).parameters.items()
                        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        except (TypeError, ValueError):
            accepted = []
        raise ValueError(
            f"{name}: unknown keyword argument(s) {sorted(ctor)} ({err}). It accepts "
            f"{sorted(set(accepted) | set(params_fields)) or 'no keyword arguments'}."
        ) from None


def check_name(name: str) -> None:
    """Raises the `make` error for an unknown name, without building anything."""
    if name in gymnax.registered_envs or name in _LFX_ENVS:
        return
    if name.startswith(BRAX_PREFIX) and name[len(BRAX_PREFIX):] in BRAX_ENVS:
        return
    close = difflib.get_close_matches(name, registered_envs(), n=5, cutoff=0.5)
    hint = f" Did you mean one of {close}?" if close else ""
    raise ValueError(
        f"Unknown environment {name!r}.{hint} See lfx.envs.registered_envs() for all names."
    )


def make(name: str, **kwargs: Any) -> tuple[Any, Any]:
    """Builds `(env, env_params)` for a registered environment name.

    Args:
      name: a name from `registered_envs()`, e.g. "CartPole-v1", "Breakout-MinAtar",
        "brax/hopper".
      **kwargs: `EnvParams` field overrides and constructor arguments.

    Raises:
      ValueError: for an unknown name (the message lists close matches) or an unknown keyword.
      ImportError: for a brax name when brax is not installed (the message says how to install it).
    """
    if not isinstance(name, str):
        raise ValueError(f"The environment name must be a string such as 'CartPole-v1', got {name!r}.")
    if name in gymnax.registered_envs:
        if name in NEEDS_DOWNLOAD and not kwargs.pop("allow_download", False):
            raise ValueError(
                f"{name} downloads the {NEEDS_DOWNLOAD[name]} data set when it is built; lfx works "
                f"offline by default. Pass allow_download=True to make() to allow it."
            )
        env, params = gymnax.make(name)
        overrides, ctor = _split_param_overrides(params, kwargs)
        if ctor:
            fields = [f.name for f in dataclasses.fields(params)] if dataclasses.is_dataclass(params) else []
            env, params = _build(name, lambda **kw: gymnax.make(name, **kw), fields, **ctor)
        return env, params.replace(**overrides) if overrides else params
    if name.startswith(BRAX_PREFIX):
        from lfx.envs.brax_env import make_brax  # noqa: PLC0415 (optional dependency)

        return make_brax(name[len(BRAX_PREFIX):], **kwargs)
    if name in _LFX_ENVS:
        factory = _resolve(_LFX_ENVS[name])
        return _build(name, factory, [], **kwargs)
    check_name(name)
    raise AssertionError("unreachable")
