"""LPG and TA-LPG: a backward recurrent network that produces the agent's update targets.

Learned Policy Gradient (Oh et al. 2020, "Discovering Reinforcement Learning Algorithms",
arXiv:2007.08794). At every step t of an agent trajectory the LPG network η reads

    x_t = [r_t, d_t, π(a_t|s_t), φ(y(s_t)), φ(y(s_{t+1}))]   (+ [n/N, log N] for TA-LPG)

with d_t the termination flag and φ a small MLP (width 16) embedding the agent's m-dim prediction
vector y (a softmax), and runs a GRU BACKWARDS in time (reset where an episode ended), so each target
can depend on the future of its episode. Heads give a scalar policy target π̂_t and a prediction
target ŷ_t = softmax(W h_t). The agent minimises

    L(θ) = -E_t[ π̂_t log π_θ(a_t|s_t) ] + β_y E_t[ KL(y_θ(s_t) ‖ ŷ_t) ],

i.e. it follows π̂ as a policy-gradient "advantage" and moves its predictions towards ŷ (targets are
constants for the agent's gradient; meta-gradients flow through them into η). TA-LPG (Jackson et al.
2024, "Discovering Temporally-Aware Reinforcement Learning Algorithms", arXiv:2402.05828) appends
the training progress n/N and log N to every x_t.

This file holds the network (`init_lpg`, `lpg_targets`), the agent (a linear/MLP actor with a
prediction head), one agent update (`agent_update`, driven by η), whole lifetimes with a traced
lifetime N (`make_lpg_train`), the meta-gradient meta-loss, and the ES fitness with antithetic task
sampling (`make_lpg_fitness`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax

from lfx import envs
from lfx.envs import gridworld
from lfx.meta.fitness import antithetic_pair_fitness


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


# ----------------------------------------------------------------------------- LPG network


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


# ----------------------------------------------------------------------------- agent


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


def make_lpg_fitness(
    config: LPGConfig,
    *,
    metric: str = "train/reward_rate",
    window_fraction: float = 0.2,
    lifetime_range: tuple[float, float] | None = None,
    antithetic_tasks: bool = True,
) -> Callable:
    """ES fitness of LPG meta-parameters with the paper's antithetic task sampling.

    Members i and P/2 + i (an antithetic ± pair in evosax's layout) train on the same task (level
    and, with `lifetime_range`, a lifetime drawn log-uniformly in [lo, hi] updates) and score 1/0 by
    which pair member ends with the higher `metric` (LPG's ES fitness). Different pairs get
    different tasks.

    Returns:
      fitness_fn(key, population) -> (fitness [P], info).
    """
    train = make_lpg_train(config)

    def fitness_fn(key, population):
        pop = jax.tree.leaves(population)[0].shape[0]
        half = pop // 2
        k_task, k_life, k_seed = jax.random.split(key, 3)
        task_keys = jax.random.split(k_task, half)
        seed_keys = jax.random.split(k_seed, half)
        if lifetime_range is None:
            lifetimes = jnp.full((half,), float(config.max_updates))
        else:
            lo, hi = jnp.log(lifetime_range[0]), jnp.log(lifetime_range[1])
            lifetimes = jnp.round(jnp.exp(jax.random.uniform(k_life, (half,), minval=lo, maxval=hi)))
        tile = lambda x: jnp.concatenate([x, x])  # noqa: E731
        _, metrics = jax.vmap(train)(
            tile(seed_keys), population, tile(lifetimes), tile(task_keys)
        )
        score = masked_final_mean(metrics[metric], metrics["train/active"], window_fraction)
        fit = antithetic_pair_fitness(score) if antithetic_tasks else score
        return fit, {"meta/score_mean": jnp.mean(score)}

    return fitness_fn


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
