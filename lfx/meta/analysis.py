"""Inspecting discovered objectives: the drift over (r, A) at a training fraction, and embeddings.

The TA-LPO paper visualises a learned drift as a heat map over the ratio r and the advantage A at
several fractions n/N of the agent's lifetime (Jackson et al. 2024, arXiv:2402.05828).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lfx.meta import lpo


def drift_grid(
    params: dict,
    config: lpo.DriftConfig,
    *,
    progress: float,
    lifetime: float = 100.0,
    clip_eps: float = 0.2,
    ratios: np.ndarray | None = None,
    advantages: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drift on a grid. Returns (ratios [R], advantages [A], drift [A, R])."""
    ratios = np.linspace(0.5, 1.5, 101) if ratios is None else np.asarray(ratios)
    advantages = np.linspace(-2.0, 2.0, 81) if advantages is None else np.asarray(advantages)
    rr, aa = np.meshgrid(ratios, advantages)
    d = lpo.drift_apply(
        params,
        jnp.log(jnp.asarray(rr.ravel())),
        jnp.asarray(aa.ravel()),
        config=config,
        clip_eps=clip_eps,
        progress=progress,
        lifetime=lifetime,
    )
    return ratios, advantages, np.asarray(d).reshape(rr.shape)


def lpo_as_ta_lpo(params: dict, config: lpo.DriftConfig) -> tuple[dict, lpo.DriftConfig]:
    """Embeds an LPO drift in the TA-LPO feature space (progress rows of W_h are zero).

    The drift is unchanged for every progress value, so LPO, TA-LPO and (with a zero output layer
    and `ppo_init`) PPO can share one compiled training function and be vmapped together.
    """
    if config.temporally_aware:
        return params, config
    ta = lpo.DriftConfig(
        hidden_size=config.hidden_size, temporally_aware=True, ppo_init=config.ppo_init
    )
    w = params["w_hidden"]
    return {"w_hidden": jnp.concatenate([w, jnp.zeros_like(w)], 0), "w_out": params["w_out"]}, ta


def ppo_as_ta_lpo(config: lpo.DriftConfig) -> dict:
    """The PPO-initialised drift with a zero output layer: PPO's clipped objective (up to 1e-4)."""
    if not config.ppo_init:
        raise ValueError("PPO is a zero-output drift only with ppo_init=True.")
    return {
        "w_hidden": jnp.zeros((config.num_features, config.hidden_size)),
        "w_out": jnp.zeros((config.hidden_size,)),
    }
