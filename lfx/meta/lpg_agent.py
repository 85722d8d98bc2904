"""The LPG inner agent: an actor with a prediction head, updated towards η's targets.

The agent minimises

    L(θ) = -E_t[ π̂_t log π_θ(a_t|s_t) ] + β_y E_t[ KL(y_θ(s_t) ‖ ŷ_t) ],

i.e. it follows π̂ as a policy-gradient "advantage" and moves its predictions towards ŷ (targets are
constants for the agent's gradient; meta-gradients flow through them into η). `make_agent` gives
(init, rollout, update); `make_lpg_train` a whole lifetime with a traced lifetime N (Oh et al. 2020,
arXiv:2007.08794; TA-LPG: Jackson et al. 2024, arXiv:2402.05828).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from lfx import envs
from lfx.envs import gridworld
from lfx.meta.lpg_network import LPGConfig, _apply_dense, _dense, lpg_targets


def init_agent(key: jax.Array, obs_dim: int, num_actions: int, config: LPGConfig) -> dict:
    """Actor with a prediction head: linear (tabular for one-hot inputs) or one hidden layer."""
    k1, k2, k3 = jax.random.split(key, 3)
    n_in = obs_dim
    p = {}
    if config.agent_hidden:
        p["torso"] = _dense(k1, obs_dim, config.agent_hidden)
        n_in = config.agent_hidden
    p["pi"] = _dense(k2, n_in, num_actions, scale=0.0)
    p["y"] = _dense(k3, n_in, config.y_dim, scale=0.0)
    return p


def agent_apply(params: dict, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns (log π(·|s) [..., A], y(s) [..., m] probabilities)."""
    h = obs
    if "torso" in params:
        h = jax.nn.relu(_apply_dense(params["torso"], h))
    return jax.nn.log_softmax(_apply_dense(params["pi"], h)), jax.nn.softmax(_apply_dense(params["y"], h))


def agent_loss(agent_params, obs, action, pi_hat, y_hat, *, y_coef):
    """-E[π̂ log π(a|s)] + β_y E[KL(y(s) ‖ ŷ)]; π̂ and ŷ are constants here (see module docstring)."""
    logp, y = agent_apply(agent_params, obs)
    logp_a = jnp.take_along_axis(logp, action[..., None], -1)[..., 0]
    kl = jnp.sum(y * (jnp.log(y + 1e-8) - jnp.log(y_hat + 1e-8)), -1)
    return -jnp.mean(pi_hat * logp_a) + y_coef * jnp.mean(kl)


@flax.struct.dataclass
class AgentState:
    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array
    env_params: Any
    update_idx: jax.Array
    last_return: jax.Array


def make_agent(config: LPGConfig):
    """Builds (init, rollout, update) for the LPG inner agent on `config.env_name`."""
    base_env, default_params = envs.make(config.env_name)
    from lfx.envs.wrappers import EpisodeStatistics, FlattenObservation  # noqa: PLC0415

    # Image observations (MinAtar's [10, 10, C], for LPG's transfer evaluation) feed the
    # linear/MLP agent flattened.
    flat = len(base_env.observation_space(default_params).shape) > 1
    env = EpisodeStatistics(FlattenObservation(base_env) if flat else base_env)
    num_actions = env.action_space(default_params).n
    obs_dim = env.observation_space(default_params).shape[0]
    # eps_root > 0 keeps meta-gradients through Adam finite where a gradient entry is exactly 0.
    tx = optax.adam(config.agent_lr, eps_root=1e-8)

    def init(key, level_key=None):
        k_agent, k_env = jax.random.split(key)
        env_params = default_params
        if config.random_levels:
            env_params = gridworld.random_level(
                level_key if level_key is not None else key, base_env.layout
            )
        params = init_agent(k_agent, obs_dim, num_actions, config)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(k_env, config.num_envs), env_params
        )
        return AgentState(params, tx.init(params), env_state, obs, env_params,
                          jnp.zeros((), jnp.int32), jnp.zeros(()))

    def rollout(state, key):
        def step(carry, k):
            env_state, obs = carry
            k_a, k_s = jax.random.split(k)
            logp, y = agent_apply(state.params, obs)
            action = jax.random.categorical(k_a, logp)
            obs2, env_state, reward, term, trunc, info = jax.vmap(
                env.step, in_axes=(0, 0, 0, None)
            )(jax.random.split(k_s, config.num_envs), env_state, action, state.env_params)
            # y(s_{t+1}) of the true successor (the final observation where an episode ended).
            _, y_next = agent_apply(state.params, info["final_observation"])
            out = dict(obs=obs, action=action, reward=reward, done=term | trunc, term=term,
                       prob=jnp.exp(jnp.take_along_axis(logp, action[:, None], -1)[:, 0]),
                       y=y, y_next=jnp.where(term[:, None], 0.0, y_next),
                       ep_return=info["episode_return"], ep_done=info["episode_done"])
            return (env_state, obs2), out

        (env_state, obs), traj = jax.lax.scan(
            step, (state.env_state, state.obs), jax.random.split(key, config.num_steps)
        )
        return state.replace(env_state=env_state, obs=obs), traj

    def update(lpg_params, state, key, lifetime):
        """One agent update driven by η; returns (state, metrics, traj)."""
        progress = state.update_idx.astype(jnp.float32) / lifetime
        state, traj = rollout(state, key)
        pi_hat, y_hat = lpg_targets(
            lpg_params, traj["reward"], traj["done"], traj["prob"], traj["y"], traj["y_next"],
            config=config, progress=progress, lifetime=lifetime,
        )
        grads = jax.grad(agent_loss)(
            state.params, traj["obs"], traj["action"], pi_hat, y_hat, y_coef=config.y_coef
        )
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        n_done = jnp.sum(traj["ep_done"])
        mean_ret = jnp.sum(traj["ep_return"]) / jnp.maximum(n_done, 1)
        last_return = jnp.where(n_done > 0, mean_ret, state.last_return)
        state = state.replace(params=params, opt_state=opt_state, update_idx=state.update_idx + 1,
                              last_return=last_return)
        metrics = {
            "train/reward_rate": jnp.mean(traj["reward"]),
            "train/episode_return": last_return,
            "lpg/pi_hat_mean": jnp.mean(pi_hat),
            "lpg/pi_hat_std": jnp.std(pi_hat),
            "lpg/y_hat_entropy": -jnp.mean(jnp.sum(y_hat * jnp.log(y_hat + 1e-8), -1)),
            "lpg/progress": progress,
        }
        return state, metrics, traj

    return init, rollout, update


def make_lpg_train(config: LPGConfig) -> Callable:
    """A whole lifetime with a traced lifetime N <= config.max_updates.

    Returns:
      train(key, lpg_params, lifetime=max_updates, level_key=None) -> (state, metrics [max_updates]);
      updates n >= N are skipped (state unchanged, metrics carry "train/active" = 0).
    """
    init, _, update = make_agent(config)

    def train(key, lpg_params, lifetime=None, level_key=None):
        lifetime = jnp.asarray(config.max_updates if lifetime is None else lifetime, jnp.float32)
        k_init, k_run = jax.random.split(key)
        state = init(k_init, level_key)

        def body(s, k):
            new, m, _ = update(lpg_params, s, k, lifetime)
            active = s.update_idx < lifetime
            s = jax.tree.map(lambda a, b: jnp.where(active, a, b), new, s)
            return s, {**m, "train/active": active.astype(jnp.float32)}

        return jax.lax.scan(body, state, jax.random.split(k_run, config.max_updates))

    return train


def masked_final_mean(values: jax.Array, active: jax.Array, window_fraction: float) -> jax.Array:
    """Mean of `values` over the last window_fraction of the ACTIVE updates. [..., U] -> [...]."""
    n = jnp.sum(active, -1, keepdims=True)
    idx = jnp.arange(values.shape[-1])
    w = jnp.maximum(jnp.round(window_fraction * n), 1.0)
    mask = (idx >= n - w) & (idx < n)
    return jnp.sum(values * mask, -1) / jnp.sum(mask, -1)
