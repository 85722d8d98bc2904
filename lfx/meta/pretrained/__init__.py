"""Discovered meta-parameters shipped with lfx, and their provenance.

Each entry is `<family>/<name>.npz` (the parameter arrays) beside `<family>/<name>.json` (the drift
configuration, the exact command, budget, hardware, wall time and the documented evaluation return).

    params, drift_config, info = load_pretrained("ta_lpo/cartpole_cpu")
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax.numpy as jnp
import numpy as np

from lfx.meta.lpo import DriftConfig

_HERE = os.path.dirname(os.path.abspath(__file__))


def available() -> list[str]:
    """Names accepted by `load_pretrained`."""
    out = []
    for family in sorted(os.listdir(_HERE)):
        d = os.path.join(_HERE, family)
        if os.path.isdir(d) and not family.startswith("_"):
            out += [f"{family}/{f[:-4]}" for f in sorted(os.listdir(d)) if f.endswith(".npz")]
    return out


def _path(name: str) -> str:
    """`<family>/<name>` -> its path inside this package; refuses anything that would leave it."""
    parts = name.split("/") if isinstance(name, str) else []
    ok = len(parts) == 2 and all(p and p not in (".", "..") and not p.startswith(".") and
                                 all(c.isalnum() or c in "_-." for c in p) for p in parts)
    path = os.path.realpath(os.path.join(_HERE, *parts)) if ok else ""
    if not ok or os.path.commonpath([path, os.path.realpath(_HERE)]) != os.path.realpath(_HERE):
        raise ValueError(
            f"Pretrained name {name!r} must be '<family>/<name>' inside lfx/meta/pretrained (no "
            f"'..', no absolute path); available: {available()}. To evaluate a run folder, pass "
            f"its path to lfx.meta.pretrained.load_run.")
    return path


def load_pretrained(name: str) -> tuple[dict[str, Any], DriftConfig, dict[str, Any]]:
    """Loads shipped meta-parameters.

    Args:
      name: "<family>/<name>", e.g. "ta_lpo/cartpole_cpu" (see `available()`).

    Returns:
      (params pytree of jnp arrays, DriftConfig, provenance dict).

    Raises:
      ValueError: for an unknown name (the message lists the available ones), or a name that
        points outside this package (`..`, an absolute path).
    """
    path = _path(name)
    if not os.path.exists(path + ".npz"):
        raise ValueError(f"No pretrained parameters {name!r}; available: {available()}.")
    with np.load(path + ".npz", allow_pickle=False) as f:
        params = {k: jnp.asarray(f[k]) for k in f.files}
    with open(path + ".json") as f:
        info = json.load(f)
    return params, DriftConfig(**info["drift_config"]), info


def load_run(workdir: str) -> tuple[dict[str, Any], DriftConfig, dict[str, Any]]:
    """Loads the drift a meta-training run left in its workdir (experiments/meta_train.py writes
    `params.npz` and `provenance.json`), so an unshipped run can be evaluated like a shipped one.

    Raises:
      ValueError: when the folder lacks either file (the message says which).
    """
    from lfx.meta.lpo import DRIFT_CONFIGS  # noqa: PLC0415

    files = [os.path.join(workdir, f) for f in ("params.npz", "provenance.json")]
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        raise ValueError(f"{workdir!r} is not a finished meta_train.py run: missing {missing}.")
    with np.load(files[0], allow_pickle=False) as f:
        params = {k: jnp.asarray(f[k]) for k in f.files}
    with open(files[1]) as f:
        info = json.load(f)
    return params, DRIFT_CONFIGS[info["config"]["drift"]], info


def save_pretrained(name: str, params: dict[str, Any], drift_config: DriftConfig, info: dict) -> str:
    """Writes `<name>.npz` and `<name>.json` under this package (used by experiments/meta_train.py)."""
    import dataclasses  # noqa: PLC0415

    path = _path(name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path + ".npz", **{k: np.asarray(v) for k, v in params.items()})
    with open(path + ".json", "w") as f:
        json.dump({**info, "drift_config": dataclasses.asdict(drift_config)}, f, indent=1)
    return path


def evaluate_pretrained(name: str, *, num_seeds: int = 4, seed: int = 0) -> tuple[float, list[float]]:
    """Trains fresh PPO agents with a shipped drift on its meta-training task; mean final return.

    Uses the recorded config (first environment, x1 lifetime, recorded PPO settings and HParams) and
    the recorded fitness window; agents use keys `jax.random.split(jax.random.key(seed), num_seeds)`.

    Returns:
      (mean over seeds, per-seed final returns).
    """
    import jax  # noqa: PLC0415

    from lfx.meta import fitness, lpo  # noqa: PLC0415
    from lfx.rl import ppo  # noqa: PLC0415

    params, drift_cfg, info = load_pretrained(name)
    c = info["config"]
    cfg = ppo.PPOConfig(
        env_name=c["env_names"][0],
        num_envs=c["num_envs"],
        num_steps=c["num_steps"],
        total_timesteps=int(c["total_timesteps"]),
        update_epochs=c["update_epochs"],
        num_minibatches=c["num_minibatches"],
        network=c["network"],
        hidden_sizes=tuple(c["hidden_sizes"]),
        activation=c["activation"],
    )
    train = ppo.make_train(cfg, lpo.make_lpo_objective(drift_cfg)).train
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    _, metrics = jax.jit(jax.vmap(train, in_axes=(0, None, None)))(
        keys, ppo.HParams(**c["hparams"]), params
    )
    final = fitness.final_return(metrics["train/episode_return"], c["window_fraction"])
    per_seed = [float(x) for x in final]
    return sum(per_seed) / num_seeds, per_seed
