"""Deterministic policy evaluation inside a jitted run, and policy export / reload.

    returns, lengths = evaluate(key, act, env, env_params, num_episodes=10, max_steps=500)

runs `num_episodes` environments side by side (vmapped) for `max_steps` steps and records each
one's first episode: the undiscounted return and length up to its first `terminated | truncated`
(steps after it are masked out; gymnax auto-resets, so the env keeps stepping harmlessly). `act` is
`act(obs, key) -> action` for ONE observation; a greedy policy ignores `key` (argmax of the logits
or Q-values, the Gaussian's mean), so its evaluation depends on `key` only through the
environments' own randomness (initial states, stochastic transitions). The environment is the raw
one (plus `ClipAction` for continuous actions): a policy trained under observation normalisation
normalises with the frozen statistics itself (`lfx.envs.wrappers.normalize`), as rejax and brax
evaluate.

Recipes call `evaluate` every `eval_every` updates inside their scan (`eval_blocks`), so the greedy
returns sit next to the training returns in the metrics ("eval/episode_return").

`export_policy(path, network, params, obs_stats=None, info=None)` writes `<stem>.npz` (the
parameters and the normalisation statistics, arrays only) and `<stem>.json` (the network's class and
fields); `load_policy(path) -> (act, params)` rebuilds `act(params, obs) -> action`, the greedy
action through the network's `act` method, normalising first when statistics were exported.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lfx.envs import wrappers

FORMAT = "lfx.rl.policy/1"


def evaluate(
    key: jax.Array, act: Callable[..., Any], env: Any, env_params: Any,
    *, num_episodes: int, max_steps: int, memory: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """Returns and lengths `[num_episodes]` of each env's first episode within `max_steps` steps.

    An episode still running after `max_steps` steps counts with its return so far and length
    `max_steps`. Args: `act(obs, key) -> action` for one observation; `env` with gymnax 1.0
    semantics (`lfx.envs.make`). A recurrent policy passes its initial `memory` (leaves
    [num_episodes, ...], e.g. a GRU's zero state) and `act(obs, memory, key) -> (action, memory)`
    for one episode's observation and memory, carried from step to step.
    """
    k_reset, k_run = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(k_reset, num_episodes), env_params
    )
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    policy = jax.vmap(act if memory is not None else (lambda o, m, k: (act(o, k), m)))

    def body(carry, k):
        obs, state, mem, ret, length, alive = carry
        k_act, k_env = jax.random.split(k)
        action, mem = policy(obs, mem, jax.random.split(k_act, num_episodes))
        obs, state, reward, terminated, truncated, _ = step(
            jax.random.split(k_env, num_episodes), state, action, env_params
        )
        ret = ret + jnp.where(alive, reward.astype(jnp.float32), 0.0)
        length = length + alive.astype(jnp.int32)
        alive = alive & ~(terminated | truncated)
        return (obs, state, mem, ret, length, alive), None

    mem = memory if memory is not None else jnp.zeros(num_episodes)
    init = (obs, state, mem, jnp.zeros(num_episodes), jnp.zeros(num_episodes, jnp.int32),
            jnp.ones(num_episodes, bool))
    (_, _, _, ret, length, _), _ = jax.lax.scan(body, init, jax.random.split(k_run, max_steps))
    return ret, length


def eval_blocks(
    state: Any, num_updates: int, *, eval_every: int,
    update: Callable[[Any], tuple[Any, dict[str, jax.Array]]],
    evaluate_state: Callable[[Any], tuple[Any, jax.Array]],
) -> tuple[Any, dict[str, jax.Array]]:
    """`num_updates` updates with an evaluation after every `eval_every`-th of them, in one scan.

    Blocks of `eval_every` updates (an inner scan) each end in `evaluate_state(state) -> (state,
    mean return)`; the remaining `num_updates % eval_every` updates run without one. Every metric
    is `[num_updates]`; "eval/episode_return" holds the latest evaluation's mean return (carried
    forward: read it where "eval/fresh" is 1, the updates that ended in an evaluation). An
    evaluation may instead return a dict of named scalars (e.g. a language model's reward and KL):
    each name is then a carried-forward metric, and `state.eval_return` holds the dict. A run in
    chunks evaluates after updates `eval_every, 2 * eval_every, ...` of each chunk, so chunks that
    are multiples of `eval_every` evaluate on the run's own grid.

    Args:
      state: the recipe's state, carrying the latest evaluation in `state.eval_return`.
      update: `update(state) -> (state, metrics)`, one update.
      evaluate_state: `f(state) -> (state, mean_return [])`.
    """

    def named(value):
        return dict(value) if isinstance(value, dict) else {"eval/episode_return": value}

    def one(s, _):
        s, m = update(s)
        return s, {**m, **named(s.eval_return), "eval/fresh": jnp.float32(0.0)}

    def block(s, _):
        s, m = jax.lax.scan(one, s, None, eval_every)
        s, ret = evaluate_state(s)
        s = s.replace(eval_return=ret)
        for name, value in named(ret).items():
            m[name] = m[name].at[-1].set(value)
        m["eval/fresh"] = m["eval/fresh"].at[-1].set(1.0)
        return s, m

    num_blocks, rest = divmod(num_updates, eval_every)
    parts = []
    if num_blocks:
        state, m = jax.lax.scan(block, state, None, num_blocks)
        parts.append(jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), m))
    if rest:
        state, m = jax.lax.scan(one, state, None, rest)
        parts.append(m)
    return state, jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)


# ---------------------------------------------------------------------------------------------
# Export / reload.


def _module_fields(network: nn.Module) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(network):
        if f.name in ("parent", "name"):
            continue
        value = getattr(network, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _paths(path: str) -> tuple[str, str]:
    stem = path[:-4] if path.endswith(".npz") else path
    return stem + ".npz", stem + ".json"


def export_policy(path: str, network: nn.Module, params: Any,
                  obs_stats: wrappers.RunningMeanStd | None = None,
                  info: dict[str, Any] | None = None) -> str:
    """Writes a trained policy as `<stem>.npz` + `<stem>.json`; returns the `.npz` path.

    Args:
      network: the flax module; it must define `act(obs) -> greedy action` and live in `lfx`.
      params: its parameters for ONE run (no seed axis).
      obs_stats: the (frozen) observation statistics the policy was trained under, one set.
      info: JSON-able metadata (env name, steps, return, ...).
    Refuses to overwrite an existing file.
    """
    from lfx.lm.io import _flat, save_npz

    npz, sidecar = _paths(path)
    for p in (npz, sidecar):
        if os.path.exists(p):
            raise FileExistsError(f"{p} exists; export to a new path (lfx never overwrites a run's files).")
    cls = type(network)
    if not cls.__module__.startswith("lfx.") or not hasattr(cls, "act"):
        raise TypeError(f"{cls.__module__}.{cls.__qualname__} cannot be exported: it must be an lfx "
                        "network with an `act(obs)` method.")
    arrays = {f"params/{k}": v for k, v in _flat(jax.device_get(params)).items()}
    if obs_stats is not None:
        arrays.update({"obs_stats/mean": np.asarray(obs_stats.mean),
                       "obs_stats/var": np.asarray(obs_stats.var),
                       "obs_stats/count": np.asarray(obs_stats.count)})
    os.makedirs(os.path.dirname(os.path.abspath(npz)), exist_ok=True)
    save_npz(npz, arrays)
    with open(sidecar, "w") as f:
        json.dump({"format": FORMAT, "network": {"class": f"{cls.__module__}:{cls.__qualname__}",
                                                 "fields": _module_fields(network)},
                   "normalize_obs": obs_stats is not None, "info": info or {}}, f, indent=1)
    return npz


def load_policy(path: str) -> tuple[Callable[[Any, jax.Array], jax.Array], Any]:
    """Reloads `export_policy`'s files: `(act, params)` with `act(params, obs) -> greedy action`.

    `act` works on one observation or a batch (the network's own batching), normalising with the
    exported statistics first when the policy was trained under them.
    """
    from lfx.lm.io import ArtifactError, _nest, load_npz

    npz, sidecar = _paths(path)
    try:
        with open(sidecar) as f:
            meta = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{sidecar}: cannot read the policy's settings ({e}).") from e
    if meta.get("format") != FORMAT:
        raise ArtifactError(f"{sidecar}: format {meta.get('format')!r}, expected {FORMAT!r}.")
    module_name, _, qualname = meta["network"]["class"].partition(":")
    if not module_name.startswith("lfx."):
        raise ArtifactError(f"{sidecar}: network class {module_name} is not an lfx network.")
    cls = getattr(importlib.import_module(module_name), qualname)
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["network"]["fields"].items()}
    network = cls(**fields)
    arrays = load_npz(npz, "policy")
    params = _nest({k[len("params/"):]: jnp.asarray(v) for k, v in arrays.items()
                    if k.startswith("params/")})
    stats = None
    if meta.get("normalize_obs"):
        stats = wrappers.RunningMeanStd(*(jnp.asarray(arrays[f"obs_stats/{k}"])
                                          for k in ("mean", "var", "count")))

    def act(params, obs):
        if stats is not None:
            obs = wrappers.normalize(stats, obs)
        return network.apply(params, obs, method="act")

    return act, params
