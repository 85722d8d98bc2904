"""How LPG / TA-LPG update targets depend on the agent's training progress.

The TA-LPG claim (Jackson et al. 2024, "Discovering Temporally-Aware Reinforcement Learning
Algorithms", arXiv:2402.05828): an LPG network meta-trained by evolution strategies uses its lifetime
inputs (n/N, log N) to change the targets it gives over the agent's lifetime, while one meta-trained
by meta-gradients (truncated backpropagation, short horizons) learns targets that vary less.

We quantify "varies with progress" on one fixed batch of agent trajectories τ (collected half-way
through a lifetime): recompute the policy targets π̂_t(n/N) for n/N ∈ {0, 0.1, …, 1} and report

    V = mean_{t,b} std_{n/N} π̂_{t,b}(n/N)  /  mean_{n/N} std_{t,b} π̂_{t,b}(n/N),

the spread caused by progress relative to the spread across the trajectory (0: the targets ignore
progress; 1: progress moves them as much as the trajectory content does). V is scale-free, so
networks whose targets have different magnitudes can be compared. For the prediction targets ŷ we
report the mean total variation ½‖ŷ(n/N) − ŷ(0.5)‖₁ over steps and progress values.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from lfx.meta import lpg

PROGRESS_GRID = np.linspace(0.0, 1.0, 11)


def progress_variation(pi_hat: jax.Array) -> jax.Array:
    """V above. pi_hat: [P, ...] targets at P progress values on one batch -> scalar."""
    across_progress = jnp.mean(jnp.std(pi_hat, axis=0))
    across_batch = jnp.mean(jnp.std(pi_hat.reshape(pi_hat.shape[0], -1), axis=1))
    return across_progress / (across_batch + 1e-8)


def targets_over_progress(config: lpg.LPGConfig, params: dict, key: jax.Array,
                          progresses=PROGRESS_GRID) -> tuple[jax.Array, jax.Array]:
    """Targets on one fixed batch of trajectories, recomputed at several progress values.

    An agent is trained with `params` for half of `config.max_updates` updates (on a random level
    when `config.random_levels`), then one rollout of [T, B] steps is collected.

    Returns:
      (π̂ [P, T, B], ŷ [P, T, B, m]).
    """
    init, rollout, update = lpg.make_agent(config)
    k0, k1, k2, k3 = jax.random.split(key, 4)
    state = init(k0, k1)
    lifetime = jnp.float32(config.max_updates)

    def body(s, k):
        return update(params, s, k, lifetime)[0], None

    state, _ = jax.lax.scan(body, state, jax.random.split(k2, config.max_updates // 2))
    _, traj = rollout(state, k3)
    return jax.vmap(lambda p: lpg.lpg_targets(
        params, traj["reward"], traj["done"], traj["prob"], traj["y"], traj["y_next"],
        config=config, progress=p, lifetime=lifetime))(jnp.asarray(progresses, jnp.float32))


@functools.lru_cache(maxsize=8)
def _batched_targets(config: lpg.LPGConfig):
    """Compiled once per (hashable, frozen) config: (params, keys [K]) -> (π̂ [K, P, T, B], ŷ)."""
    return jax.jit(jax.vmap(lambda p, k: targets_over_progress(config, p, k), in_axes=(None, 0)))


def target_variation(config: lpg.LPGConfig, params: dict, key: jax.Array, num_batches: int = 8) -> dict:
    """V and the ŷ total variation over `num_batches` independent agents/levels (mean, s.e.).

    Also returns the mean π̂ at each progress value (for the plot of targets over the lifetime).
    """
    pi, yh = _batched_targets(config)(params, jax.random.split(key, num_batches))
    v = jax.vmap(progress_variation)(pi)  # [K]
    mid = len(PROGRESS_GRID) // 2
    tv = jnp.mean(0.5 * jnp.sum(jnp.abs(yh - yh[:, mid:mid + 1]), -1), axis=(1, 2, 3))  # [K]
    se = lambda x: float(jnp.std(x) / np.sqrt(num_batches))  # noqa: E731
    return {
        "progress": PROGRESS_GRID.tolist(),
        "pi_hat_mean": np.asarray(pi.mean((0, 2, 3))).tolist(),
        "pi_hat_progress_variation": float(v.mean()),
        "pi_hat_progress_variation_se": se(v),
        "y_hat_progress_tv": float(tv.mean()),
        "y_hat_progress_tv_se": se(tv),
        "num_batches": num_batches,
    }


def load_params(path: str, like: dict) -> dict:
    """LPG parameters saved by experiments/meta_lpg.py (`params.npz`, leaves in tree order)."""
    data = np.load(path, allow_pickle=False)
    leaves, treedef = jax.tree_util.tree_flatten(like)
    paths = ["/".join(map(str, p)) for p, _ in jax.tree_util.tree_flatten_with_path(like)[0]]
    missing = [p for p in paths if p not in data]
    if missing:
        raise ValueError(f"{path} does not hold LPG parameters of this shape (missing {missing[:3]}); "
                         "pass the meta_lpg config the run was trained with.")
    out = [jnp.asarray(data[p]) for p in paths]
    bad = [p for p, a, b in zip(paths, out, leaves) if a.shape != b.shape]
    if bad:
        raise ValueError(f"{path}: shape mismatch for {bad[:3]}; pass the meta_lpg config of the run.")
    return jax.tree_util.tree_unflatten(treedef, out)
