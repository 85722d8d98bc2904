"""The LPG network: a backward GRU over an agent trajectory that outputs the agent's targets.

Learned Policy Gradient (Oh et al. 2020, "Discovering Reinforcement Learning Algorithms",
arXiv:2007.08794): at every step t the network η reads

    x_t = [r_t, d_t, π(a_t|s_t), φ(y(s_t)), φ(y(s_{t+1}))]   (+ [n/N, log N] for TA-LPG)

with d_t the termination flag and φ a small MLP (width 16) embedding the agent's m-dim prediction
vector y, and runs a GRU BACKWARDS in time (reset where an episode ended), so each target can depend
on the future of its episode. Heads give a scalar policy target π̂_t and a prediction target
ŷ_t = softmax(W h_t). TA-LPG (Jackson et al. 2024, arXiv:2402.05828) appends the training progress
n/N and log N to every x_t. `LPGConfig` also holds the inner agent's settings (`lfx.meta.lpg_agent`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class LPGConfig:
    """Static shapes of the LPG network and its inner agent problem.

    Attributes:
      hidden_size: GRU width (LPG: 256).
      embed_size: width of the y-embedding MLP φ (LPG: 16).
      y_dim: size m of the agent's prediction vector.
      temporally_aware: add n/N and log N inputs (TA-LPG).
      env_name: an LPG grid world from the registry.
      random_levels: draw a level per lifetime from the task key (random grid worlds).
      num_envs, num_steps: parallel environments and rollout length per agent update.
      max_updates: scan length; lifetimes N <= max_updates are masked within it.
      agent_hidden: agent torso width (0: linear, i.e. tabular for one-hot observations).
      agent_lr: Adam step size of the agent.
      y_coef: β_y.
      gamma: discount of the meta-gradient's actor-critic returns.
    """

    hidden_size: int = 256
    embed_size: int = 16
    y_dim: int = 8
    temporally_aware: bool = False
    env_name: str = "LPG-Tabular-Dense"
    random_levels: bool = False
    num_envs: int = 16
    num_steps: int = 20
    max_updates: int = 100
    agent_hidden: int = 0
    agent_lr: float = 0.05
    y_coef: float = 0.5
    gamma: float = 0.99

    def __post_init__(self):
        if min(self.hidden_size, self.embed_size, self.y_dim, self.num_envs, self.num_steps) < 1:
            raise ValueError("hidden_size, embed_size, y_dim, num_envs and num_steps must be >= 1.")
        if self.random_levels and not self.env_name.startswith("LPG-"):
            raise ValueError("random_levels needs an LPG grid world env_name (LPG-...).")

    @property
    def num_inputs(self) -> int:
        return 5 + 2 * int(self.temporally_aware)


def _dense(key, n_in, n_out, scale=1.0):
    return {"w": scale * jax.random.normal(key, (n_in, n_out)) / jnp.sqrt(n_in), "b": jnp.zeros(n_out)}


def init_lpg(key: jax.Array, config: LPGConfig) -> dict:
    """LPG meta-parameters: y-embedding MLP, GRU (input/recurrent weights), π̂ and ŷ heads."""
    ks = jax.random.split(key, 7)
    h, f = config.hidden_size, config.num_inputs
    return {
        "embed1": _dense(ks[0], config.y_dim, config.embed_size),
        "embed2": _dense(ks[1], config.embed_size, 1),
        "gru_x": _dense(ks[2], f, 3 * h),
        "gru_h": _dense(ks[3], h, 3 * h),
        "pi_head": _dense(ks[4], h, 1, scale=0.1),
        "y_head": _dense(ks[5], h, config.y_dim, scale=0.1),
    }


def _apply_dense(p, x):
    return x @ p["w"] + p["b"]


def _embed(params, y):
    return _apply_dense(params["embed2"], jax.nn.relu(_apply_dense(params["embed1"], y)))[..., 0]


def _gru(params, x, h):
    gx = _apply_dense(params["gru_x"], x)
    gh = _apply_dense(params["gru_h"], h)
    xz, xr, xn = jnp.split(gx, 3, -1)
    hz, hr, hn = jnp.split(gh, 3, -1)
    z = jax.nn.sigmoid(xz + hz)
    r = jax.nn.sigmoid(xr + hr)
    n = jnp.tanh(xn + r * hn)
    return (1.0 - z) * n + z * h


def lpg_targets(
    params: dict,
    reward: jax.Array,
    done: jax.Array,
    prob: jax.Array,
    y: jax.Array,
    y_next: jax.Array,
    *,
    config: LPGConfig,
    progress: jax.Array | float = 0.0,
    lifetime: jax.Array | float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """Runs the LPG GRU backwards over a trajectory.

    Args:
      params: LPG meta-parameters.
      reward, done, prob: [T, B] reward, episode-end flag, π(a_t|s_t).
      y, y_next: [T, B, m] prediction vectors at s_t and s_{t+1}.
      config: static network shape.
      progress, lifetime: n/N and N (used only when temporally aware).

    Returns:
      (π̂ [T, B], ŷ [T, B, m] probabilities).
    """
    x = [reward, done.astype(reward.dtype), prob, _embed(params, y), _embed(params, y_next)]
    if config.temporally_aware:
        x.append(jnp.full_like(reward, progress))
        x.append(jnp.full_like(reward, jnp.log(jnp.asarray(lifetime, reward.dtype))))
    x = jnp.stack(x, -1)  # [T, B, F]
    b = reward.shape[1]

    def step(h, inp):
        x_t, d_t = inp
        h = h * (1.0 - d_t[:, None].astype(h.dtype))  # the episode ended at t: forget its future
        h = _gru(params, x_t, h)
        return h, h

    _, hs = jax.lax.scan(step, jnp.zeros((b, config.hidden_size), x.dtype), (x, done), reverse=True)
    pi_hat = _apply_dense(params["pi_head"], hs)[..., 0]
    y_hat = jax.nn.softmax(_apply_dense(params["y_head"], hs), -1)
    return pi_hat, y_hat
