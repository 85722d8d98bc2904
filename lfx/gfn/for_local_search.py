"""Flow of Reasoning's local search: keep the first half of a trajectory, re-sample the rest.

Yu et al. 2024, "Flow of Reasoning" (arXiv:2406.05673) keeps the first half of the best plan and
re-samples the rest; here every sampled trajectory is destroyed and rebuilt uniformly at random,
and the successes enter the replay buffer (`lfx.gfn.for_train`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lfx.gfn.base import GFNState
from lfx.gfn.rollout import forward_rollout


def start_states(obj):
    """GFNState of a batch of objects obj [n, L] (time 0, not done)."""
    n = obj.shape[0]
    return GFNState(time=jnp.zeros((n,), jnp.int32), obj=obj, done=jnp.zeros((n,), bool))


def local_search(key, env, env_params, policy_apply, params, terminal_obj, length):
    """Destroy-and-rebuild: undo the last ceil(n/2) of each trajectory's n moves, then complete it
    uniformly at random. terminal_obj: [B, L]; length: [B] (exit included). Returns Trajectories."""
    undo = (length - 1) - (length - 1) // 2
    back = jax.vmap(env.apply_backward, in_axes=(0, None, None))

    def body(i, s):
        p = back(s, jnp.zeros((), jnp.int32), env_params)
        keep = lambda a, b: jnp.where((i < undo).reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
        return jax.tree.map(keep, p, s)

    s = jax.lax.fori_loop(0, env.max_steps, body, start_states(terminal_obj))
    return forward_rollout(key, jax.lax.stop_gradient(params), env, env_params, policy_apply,
                           terminal_obj.shape[0], epsilon=1.0, init_obj=s.obj)
