"""GAFlowNet: a GFlowNet trained on intrinsic rewards from random network distillation (RND).

Pan et al. 2022, "Generative Augmented Flow Networks" (arXiv:2210.03308); RND: Burda et al. 2018,
"Exploration by Random Network Distillation" (arXiv:1810.12894). OC-GFN (`lfx.gfn.ocgfn`,
method "paper") uses a GAFlowNet trained WITHOUT extrinsic reward as its explorer: its trajectories
are the positive examples of the outcome-conditioned pre-training.

**RND.** A fixed, randomly initialised target net f and a trained predictor f^ (same architecture,
obs -> hidden -> hidden -> latent, leaky ReLU). The intrinsic reward of a state and the RND loss are

    r_i(s) = beta * || f(s) - f^(s) ||_2,        L_RND = mean over visited states of || f(s) - f^(s) ||_2,

so r_i decays where the explorer has been and stays high where it has not.

**State-level augmentation with trajectory balance** (torchgfn's `TBGAFN` without edge rewards,
`tutorials/examples/train_hypergrid_gafn.py` in GFNOrg/torchgfn: the special case r(s_t -> s_t+1) = 0
of GAFlowNet's joint augmentation, Eq. 6 of the paper):

    delta = log Z + sum_t log PF(s_t+1|s_t) - sum_t log PB(s_t|s_t+1) - log(R(x) + r_i(x)),

    L = mean_b delta_b^2 + L_RND.

Reward-free (OC-GFN's explorer): R(x) = 0, the target is log r_i(x). The gradient of r_i is stopped
inside the TB target; L_RND trains only f^. Defaults follow that torchgfn script: beta 0.1, RND
hidden 256, latent 128, Adam 1e-3 for f^. The edge-level augmentation (Eq. 4, the paper code's
default per torchgfn's comment) is not implemented here.

Shapes: obs [..., O]; trajectory arrays [T, B] as in `lfx.gfn.rollout.Trajectories`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from lfx.gfn.networks import mlp_init


def leaky_mlp_apply(params: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    """Leaky-ReLU MLP (slope 0.01, torch's default); x: [..., in] -> [..., out]."""
    for layer in params[:-1]:
        x = jax.nn.leaky_relu(x @ layer["w"] + layer["b"], 0.01)
    return x @ params[-1]["w"] + params[-1]["b"]


def rnd_init(key: jax.Array, obs_size: int, hidden: int = 256, latent: int = 128) -> dict[str, Any]:
    """{"target": fixed random net, "predictor": trained net}, both obs -> hidden -> hidden -> latent."""
    kt, kp = jax.random.split(key)
    sizes = (obs_size, hidden, hidden, latent)
    return {"target": mlp_init(kt, sizes), "predictor": mlp_init(kp, sizes)}


def rnd_error(predictor: Any, target: Any, obs: jax.Array) -> jax.Array:
    """[...] || f(obs) - f^(obs) ||_2 (gradient stopped through the target net f)."""
    f = jax.lax.stop_gradient(leaky_mlp_apply(target, obs))
    return jnp.sqrt(jnp.sum((f - leaky_mlp_apply(predictor, obs)) ** 2, -1) + 1e-12)


def intrinsic_log_reward(predictor: Any, target: Any, obs: jax.Array, beta) -> jax.Array:
    """[...] log r_i(s) = log(beta * ||f(s) - f^(s)||), gradient stopped (a reward, not a loss)."""
    err = jax.lax.stop_gradient(rnd_error(predictor, target, obs))
    return jnp.log(jnp.maximum(beta * err, 1e-30))


def rnd_loss(predictor: Any, target: Any, obs: jax.Array, mask: jax.Array) -> jax.Array:
    """L_RND: mean of ||f - f^|| over the states where `mask` ([...] bool) is True; obs [..., O]."""
    err = rnd_error(predictor, target, obs)
    return jnp.sum(jnp.where(mask, err, 0.0)) / jnp.maximum(mask.sum(), 1)


def augmented_trajectory_balance(log_z, log_pf, log_pb, log_r_ext, log_r_int, valid):
    """GAFlowNet TB with a state-level intrinsic reward (module docstring).

        delta_b = log Z + sum_t log PF - sum_t log PB - logaddexp(log R(x_b), log r_i(x_b))

    Args:
      log_z: scalar; log_pf, log_pb, valid: [T, B]; log_r_ext: [B] extrinsic log R(x) (-inf for a
        reward-free explorer); log_r_int: [B] log r_i(x) (gradient already stopped).
    Returns `(loss, metrics)`.
    """
    target = jnp.logaddexp(log_r_ext, log_r_int)
    delta = (log_z + jnp.sum(jnp.where(valid, log_pf, 0.0), 0) - jnp.sum(jnp.where(valid, log_pb, 0.0), 0)
             - target)
    return jnp.mean(delta**2), {"explorer/tb_residual_abs": jnp.mean(jnp.abs(delta))}
