"""LPG's meta-gradient: the inner update and the actor-critic meta-loss for `lfx.meta.metagrad`
(Oh et al. 2020, "Discovering Reinforcement Learning Algorithms", arXiv:2007.08794)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from lfx.meta.lpg_agent import agent_apply, make_agent
from lfx.meta.lpg_network import LPGConfig, lpg_targets


def make_lpg_metagrad(config: LPGConfig, *, entropy_coef=5e-2, target_entropy_coef=1e-3,
                      pi_hat_l2=5e-3, y_hat_l2=1e-3) -> tuple[Callable, Callable, Callable]:
    """Inner update and meta-loss for `lfx.meta.metagrad` (LPG's meta-gradient).

    meta-loss (minimised) on a FRESH rollout after the window: -E[log π(a|s) (G - mean G)] (returns
    G discounted within the rollout) - 5e-2 H(π) - 1e-3 H(ŷ) + 5e-3 E[π̂²] + 1e-3 E[‖ŷ‖²]
    (Oh et al. 2020's regularisers; the last three act on η through the fresh rollout's targets).

    Returns:
      (init(key, level_key) -> agent state, inner_update(η, state, key) -> state,
       meta_loss(η, state, key) -> scalar); the lifetime is `config.max_updates`.
    """
    init, rollout, update = make_agent(config)
    lifetime = jnp.float32(config.max_updates)

    def inner_update(lpg_params, state, key):
        return update(lpg_params, state, key, lifetime)[0]

    def meta_loss(lpg_params, state, key):
        _, traj = rollout(state, key)
        logp, _ = agent_apply(state.params, traj["obs"])
        logp_a = jnp.take_along_axis(logp, traj["action"][..., None], -1)[..., 0]

        def disc(g, inp):
            r, d = inp
            g = r + config.gamma * g * (1.0 - d.astype(r.dtype))
            return g, g

        _, ret = jax.lax.scan(disc, jnp.zeros_like(traj["reward"][0]), (traj["reward"], traj["done"]),
                              reverse=True)
        adv = jax.lax.stop_gradient(ret - ret.mean())
        entropy = -jnp.mean(jnp.sum(jnp.exp(logp) * logp, -1))
        progress = state.update_idx.astype(jnp.float32) / lifetime
        pi_hat, y_hat = lpg_targets(
            lpg_params, traj["reward"], traj["done"], traj["prob"], traj["y"], traj["y_next"],
            config=config, progress=progress, lifetime=lifetime,
        )
        y_ent = -jnp.mean(jnp.sum(y_hat * jnp.log(y_hat + 1e-8), -1))
        return (-jnp.mean(logp_a * adv) - entropy_coef * entropy - target_entropy_coef * y_ent
                + pi_hat_l2 * jnp.mean(pi_hat**2) + y_hat_l2 * jnp.mean(jnp.sum(y_hat**2, -1)))

    return init, inner_update, meta_loss
