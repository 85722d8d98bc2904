"""LPO and TA-LPO: a learned drift function plugged into a mirror-learning policy objective.

The agent minimises

    L(θ) = -E_t[ r_t A_t - drift_φ(r_t, A_t, n/N, N) ],      r_t = π_θ(a_t|s_t) / π_old(a_t|s_t),

where the drift is a small network with a non-negative output that is zero at r = 1 (the mirror
learning conditions). With drift ≡ 0 the loss is the policy-gradient surrogate -E[r A].

Drift network (Lu et al. 2022, "Discovered Policy Optimisation", arXiv:2210.05639, and its public
code): features of (r, A)

    x = [log r, (log r)², 1 - r, (1 - r)², A log r, A (log r)², A (1 - r), A (1 - r)²]     (8)

one hidden layer of 128 tanh units without biases, a scalar linear output without bias, and

    drift = relu(out(x) [+ relu((r - clip(r, 1 - ε, 1 + ε)) A)] - 1e-4).

Every feature is 0 at r = 1 and there are no biases, so out = 0 there and the drift is exactly 0.
The bracketed term is the PPO initialisation: with out ≡ 0 (zero output layer),
r A - relu((r - clip(r)) A) = min(r A, clip(r) A), PPO's clipped surrogate (up to the 1e-4 offset).

TA-LPO (Jackson et al. 2024, "Discovering Temporally-Aware Reinforcement Learning Algorithms",
arXiv:2402.05828) gives the drift the agent's training progress p = n/N: features
[x, p·x] (16), and optionally the lifetime itself as [x, p·x, log(N)·x] when lifetimes vary during
meta-training (with a fixed lifetime log N is a constant and is left out, as in the paper's LPO
experiments). Multiplying by x keeps the drift 0 at r = 1.

Meta-parameters are a dict {"w_hidden": [F, H], "w_out": [H]}; they are the first argument of every
function here, so `jax.vmap` over them evaluates an ES population and `jax.grad` gives meta-gradients.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

DRIFT_OFFSET = 1e-4

Objective = Callable[..., tuple[jax.Array, dict[str, jax.Array]]]


@dataclasses.dataclass(frozen=True)
class DriftConfig:
    """Static shape of a drift network.

    Attributes:
      hidden_size: tanh hidden units (LPO: 128).
      temporally_aware: append progress-scaled features p·x (TA-LPO).
      lifetime_features: also append log(N)·x (TA-LPO meta-trained over varied lifetimes).
      ppo_init: add PPO's clipping term inside the relu, so a zero output layer gives PPO.
    """

    hidden_size: int = 128
    temporally_aware: bool = False
    lifetime_features: bool = False
    ppo_init: bool = False

    def __post_init__(self):
        if self.hidden_size < 1:
            raise ValueError(f"hidden_size must be >= 1, got {self.hidden_size}.")
        if self.lifetime_features and not self.temporally_aware:
            raise ValueError(
                "lifetime_features=True needs temporally_aware=True (TA-LPO); set both or neither."
            )

    @property
    def num_features(self) -> int:
        return 8 * (1 + int(self.temporally_aware) + int(self.lifetime_features))


def lpo_features(log_ratio: jax.Array, advantages: jax.Array) -> jax.Array:
    """The 8 LPO features of (r, A).

    Args:
      log_ratio: [M] log r.
      advantages: [M] A.

    Returns:
      [M, 8]: [log r, (log r)², 1 - r, (1 - r)², and the same four times A].
    """
    r = jnp.exp(log_ratio)
    base = jnp.stack([log_ratio, log_ratio**2, 1.0 - r, (1.0 - r) ** 2], axis=-1)
    return jnp.concatenate([base, base * advantages[..., None]], axis=-1)


def drift_features(
    log_ratio: jax.Array,
    advantages: jax.Array,
    *,
    config: DriftConfig,
    progress: jax.Array | float = 0.0,
    lifetime: jax.Array | float = 1.0,
) -> jax.Array:
    """Drift network inputs: [x], [x, p·x] or [x, p·x, log(N)·x] (see module docstring). [M, F]."""
    x = lpo_features(log_ratio, advantages)
    feats = [x]
    if config.temporally_aware:
        feats.append(jnp.asarray(progress, x.dtype) * x)
    if config.lifetime_features:
        feats.append(jnp.log(jnp.asarray(lifetime, x.dtype)) * x)
    return jnp.concatenate(feats, axis=-1)


def init_drift(key: jax.Array, config: DriftConfig, *, output_scale: float | None = None) -> dict:
    """Initialises drift meta-parameters.

    Hidden weights ~ N(0, 1/F) (LeCun normal). Output weights ~ N(0, output_scale²/H); the default
    output_scale is 0 with `ppo_init` (the objective starts exactly at PPO) and 1 otherwise.

    Returns:
      {"w_hidden": [F, H], "w_out": [H]}.
    """
    if output_scale is None:
        output_scale = 0.0 if config.ppo_init else 1.0
    k1, k2 = jax.random.split(key)
    f, h = config.num_features, config.hidden_size
    return {
        "w_hidden": jax.random.normal(k1, (f, h)) / jnp.sqrt(f),
        "w_out": output_scale * jax.random.normal(k2, (h,)) / jnp.sqrt(h),
    }


def drift_apply(
    params: dict,
    log_ratio: jax.Array,
    advantages: jax.Array,
    *,
    config: DriftConfig,
    clip_eps: jax.Array | float = 0.2,
    progress: jax.Array | float = 0.0,
    lifetime: jax.Array | float = 1.0,
) -> jax.Array:
    """The drift, elementwise.

    drift = relu(tanh(x W_h) w_o [+ relu((r - clip(r, 1 ± ε)) A)] - 1e-4) >= 0, and 0 at r = 1.

    Args:
      params: {"w_hidden": [F, H], "w_out": [H]}.
      log_ratio: [M] log r.
      advantages: [M] A.
      config: static network shape.
      clip_eps: PPO's ε (used only with `config.ppo_init`).
      progress: n/N in [0, 1] (used only when temporally aware).
      lifetime: N, number of agent updates (used only with lifetime features).

    Returns:
      [M] drift values.
    """
    x = drift_features(log_ratio, advantages, config=config, progress=progress, lifetime=lifetime)
    out = jnp.tanh(x @ params["w_hidden"]) @ params["w_out"]
    if config.ppo_init:
        r = jnp.exp(log_ratio)
        out = out + jax.nn.relu((r - jnp.clip(r, 1.0 - clip_eps, 1.0 + clip_eps)) * advantages)
    return jax.nn.relu(out - DRIFT_OFFSET)


def lpo_objective(
    params: dict,
    log_ratio: jax.Array,
    advantages: jax.Array,
    *,
    config: DriftConfig,
    clip_eps: jax.Array | float,
    progress: jax.Array | float,
    lifetime: jax.Array | float,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """LPO/TA-LPO policy loss -mean(r A - drift), the quantity the agent minimises.

    Args:
      params: drift meta-parameters (see `init_drift`).
      log_ratio: [M] log π(a|s) - log π_old(a|s).
      advantages: [M] advantages (normalised by the caller; no gradient flows into them).
      config: static drift shape.
      clip_eps, progress, lifetime: see `drift_apply`.

    Returns:
      (loss scalar, {"lpo/drift": mean drift, "lpo/surrogate": mean r A}).
    """
    advantages = jax.lax.stop_gradient(advantages)
    r = jnp.exp(log_ratio)
    drift = drift_apply(
        params,
        log_ratio,
        advantages,
        config=config,
        clip_eps=clip_eps,
        progress=progress,
        lifetime=lifetime,
    )
    surrogate = r * advantages
    loss = -jnp.mean(surrogate - drift)
    return loss, {"lpo/drift": jnp.mean(drift), "lpo/surrogate": jnp.mean(surrogate)}


def ppo_clip_objective(
    params: Any,
    log_ratio: jax.Array,
    advantages: jax.Array,
    *,
    clip_eps: jax.Array | float,
    progress: jax.Array | float = 0.0,
    lifetime: jax.Array | float = 1.0,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """PPO's clipped surrogate in the pluggable-objective signature (params unused).

    L = -mean(min(r A, clip(r, 1 - ε, 1 + ε) A))   (Schulman et al. 2017, arXiv:1707.06347).
    """
    del params, progress, lifetime
    advantages = jax.lax.stop_gradient(advantages)
    r = jnp.exp(log_ratio)
    clipped = jnp.clip(r, 1.0 - clip_eps, 1.0 + clip_eps)
    loss = -jnp.mean(jnp.minimum(r * advantages, clipped * advantages))
    return loss, {"lpo/drift": jnp.zeros(()), "lpo/surrogate": jnp.mean(r * advantages)}


def make_lpo_objective(config: DriftConfig) -> Objective:
    """Binds a drift config: returns `objective(params, log_ratio, adv, *, clip_eps, progress, lifetime)`.

    The result has the signature of the PPO recipe's pluggable policy objective
    (`lfx.rl.ppo.make_train(cfg, policy_objective=...)`).
    """

    def objective(params, log_ratio, advantages, *, clip_eps, progress, lifetime):
        return lpo_objective(
            params,
            log_ratio,
            advantages,
            config=config,
            clip_eps=clip_eps,
            progress=progress,
            lifetime=lifetime,
        )

    return objective


# Named drift configurations; flags select by name.
DRIFT_CONFIGS: dict[str, DriftConfig] = {
    "lpo": DriftConfig(),
    "lpo_ppo_init": DriftConfig(ppo_init=True),
    "ta_lpo": DriftConfig(temporally_aware=True),
    "ta_lpo_ppo_init": DriftConfig(temporally_aware=True, ppo_init=True),
    "ta_lpo_lifetime": DriftConfig(temporally_aware=True, lifetime_features=True),
    "ta_lpo_lifetime_ppo_init": DriftConfig(temporally_aware=True, lifetime_features=True,
                                            ppo_init=True),
}
