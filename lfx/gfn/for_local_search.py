"""Flow of Reasoning's local search: keep the first moves of a trajectory, re-sample the rest.

Yu et al. 2024, "Flow of Reasoning" (arXiv:2406.05673). The public code (Yu-Fangxu/FoR,
BlocksWorld/lightning_module_selection.py, `training_step` lines 169-239 and `local_search` lines
597-697) does, for each problem after drawing its n_samples (4) on-policy plans:

    best = the first sample of highest log R                            (lines 203-206, strict >)
    repeat 16 times:                                                    (line 209)
        keep best's first K = args.step // 2 actions                    (lines 610, 634-635)
        complete the plan with actions drawn uniformly at random        (lines 637-645)
        if log R(new) > log R(best): add it to the loss batch and to the replay buffer
                                                                        (lines 231-239)

The acceptance threshold is the ORIGINAL best's log R (never raised inside the loop), so every
restart that beats it is kept, duplicates included, and nothing is kept when the best already
has the highest reward. Here (`improve_best`, used by `lfx.gfn.for_train` with
local_search="best") K = step_limit // 2 where the environment has a step limit (BlocksWorld:
FoR's args.step), else half the moves, floored (Game24: 3 operations -> keep 1); never more than
the trajectory's moves (a plan here may stop early on success). The completion is uniform, as in the
code (`proposal="uniform"`), or the epsilon-mixed policy (`proposal="policy"`, an option).

`local_search` is the single destroy-and-rebuild step (keep the first `keep` moves, complete); lfx's
first version (local_search="every") applied it once to every sampled trajectory and kept the
successes for the buffer only.

Shapes: a batch of Pb problems with G samples each arrives as [Pb, G, ...]; `improve_best` returns
Pb * restarts trajectories (problem-major) and an accepted mask [Pb, restarts].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lfx.gfn.base import GFNState
from lfx.gfn.rollout import forward_rollout

PROPOSALS = ("uniform", "policy")


def start_states(obj):
    """GFNState of a batch of objects obj [n, L] (time 0, not done)."""
    n = obj.shape[0]
    return GFNState(time=jnp.zeros((n,), jnp.int32), obj=obj, done=jnp.zeros((n,), bool))


def kept_moves(env, terminal_obj, length):
    """[B] moves the local search keeps: step_limit // 2 if `env` has `step_limit(obj)`, else
    moves // 2; at most the trajectory's moves (length - 1, the exit excluded)."""
    moves = length - 1
    if hasattr(env, "step_limit"):
        return jnp.minimum(jax.vmap(env.step_limit)(terminal_obj) // 2, moves)
    return moves // 2


def local_search(key, env, env_params, policy_apply, params, terminal_obj, length, keep=None, *,
                 epsilon=1.0):
    """Destroy-and-rebuild: undo moves until `keep` [B] remain (default: half the moves, floored,
    i.e. undo ceil(n/2) of n), then complete with the epsilon-mixed policy (epsilon 1 = uniformly at
    random). terminal_obj: [B, L]; length: [B] (exit included). Returns Trajectories of the
    completions (their log PF covers only the re-sampled part)."""
    moves = length - 1
    keep = moves // 2 if keep is None else keep
    undo = moves - keep
    back = jax.vmap(env.apply_backward, in_axes=(0, None, None))

    def body(i, s):
        p = back(s, jnp.zeros((), jnp.int32), env_params)
        sel = lambda a, b: jnp.where((i < undo).reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
        return jax.tree.map(sel, p, s)

    s = jax.lax.fori_loop(0, env.max_steps, body, start_states(terminal_obj))
    return forward_rollout(key, jax.lax.stop_gradient(params), env, env_params, policy_apply,
                           terminal_obj.shape[0], epsilon=epsilon, init_obj=s.obj)


def improve_best(key, env, env_params, policy_apply, params, terminal_obj, log_reward, length, *,
                 restarts: int = 16, epsilon=1.0):
    """FoR's local search (module docstring) for Pb problems with G samples each.

    terminal_obj [Pb, G, L], log_reward [Pb, G], length [Pb, G]. Returns (Trajectories of the
    Pb * restarts completions, problem-major; accepted [Pb, restarts] bool: log R > the best
    sample's log R)."""
    Pb, G = log_reward.shape
    best = jnp.argmax(log_reward, 1)  # first of the highest, as the code's strict `>`
    pick = lambda a: jnp.take_along_axis(a, best.reshape((Pb, 1) + (1,) * (a.ndim - 2)), 1)[:, 0]
    b_obj, b_len, b_logr = pick(terminal_obj), pick(length), pick(log_reward)
    rep = lambda a: jnp.repeat(a, restarts, 0)
    obj, n = rep(b_obj), rep(b_len)
    ls = local_search(key, env, env_params, policy_apply, params, obj, n, kept_moves(env, obj, n),
                      epsilon=epsilon)
    accepted = ls.log_reward.reshape(Pb, restarts) > b_logr[:, None]
    return ls, accepted
