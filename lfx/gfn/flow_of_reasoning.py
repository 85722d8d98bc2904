"""Flow of Reasoning on Game24: a small policy trained with trajectory balance vs REINFORCE.

Yu et al. 2024, "Flow of Reasoning" (arXiv:2406.05673): train the reasoning policy as a GFlowNet
(trajectory balance, learned log Z, success reward 100) from a handful of problems, so that it
samples *diverse* correct solutions. Here the policy is a small MLP over the symbolic Game24 state
(`lfx.gfn.game24`, one network for every puzzle: the observation carries the puzzle), and the
baseline is REINFORCE on the same network with reward 1[solved] and a moving-average baseline.

TB per puzzle: log Z(puzzle) is the network's log F(s0) head (a conditional log-partition); the DAG
is a tree, so log PB = 0:

    L_TB = mean_b (log F(s0_b) + sum_t log PF(a_t|s_t) - log R(x_b))^2
    L_RF = -mean_b (1[x_b solved] - baseline) sum_t log PF(a_t|s_t)

Evaluation on held-out puzzles: success rate of on-policy samples and the number of DISTINCT
correct operation sequences among `n_samples` samples per puzzle.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from lfx.gfn.game24 import Game24, puzzle_obj, solvable
from lfx.gfn.networks import make_policy
from lfx.gfn.rollout import forward_rollout


@dataclasses.dataclass(frozen=True)
class FoRConfig:
    method: str = "tb"  # "tb" | "reinforce"
    batch_size: int = 64
    num_iterations: int = 2000
    hidden: tuple = (128, 128)


@struct.dataclass
class FoRHParams:
    lr: float = 1e-3
    epsilon: float = 0.05
    baseline_decay: float = 0.95


def make_puzzles(seed: int, n: int, exclude=()) -> np.ndarray:
    """[n, 4] distinct solvable puzzles (numbers 1..13, sorted), drawn with `seed`."""
    rng = np.random.default_rng(seed)
    seen = {tuple(sorted(p)) for p in exclude}
    out = []
    while len(out) < n:
        p = tuple(sorted(int(x) for x in rng.integers(1, 14, size=4)))
        if p not in seen and solvable(p):
            seen.add(p)
            out.append(p)
    return np.asarray(out, np.int32)


def make_for_train(config: FoRConfig, train_puzzles: np.ndarray):
    """`train(key, hparams) -> (params, metrics)`; metrics["train/success"] is [num_iterations]."""
    if config.method not in ("tb", "reinforce"):
        raise ValueError(f"method must be 'tb' or 'reinforce'; got {config.method!r}.")
    env = Game24(tuple(train_puzzles[0]))
    ep = env.default_params
    init, apply = make_policy(env.obs_size, env.num_actions, env.num_backward_actions,
                              hidden=config.hidden, with_flow=True)
    objs = jnp.asarray(np.stack([puzzle_obj(p) for p in train_puzzles]))

    def train(key, hp: FoRHParams):
        tx = optax.inject_hyperparams(optax.adam)(learning_rate=hp.lr)
        k0, k_run = jax.random.split(key)
        params = init(k0)

        def loss_fn(params, k, baseline):
            k1, k2 = jax.random.split(k)
            ids = jax.random.randint(k1, (config.batch_size,), 0, objs.shape[0])
            tr = forward_rollout(k2, params, env, ep, apply, config.batch_size,
                                 epsilon=hp.epsilon, init_obj=objs[ids])
            solved = jax.vmap(env.is_solved)(tr.terminal_obj).astype(jnp.float32)
            if config.method == "tb":
                # conditional log Z = log F(s0 | puzzle): TB with a per-lane log Z
                delta = (tr.log_flow[0] + jnp.sum(tr.log_pf, 0) - jnp.sum(tr.log_pb, 0)
                         - tr.log_reward)
                loss = jnp.mean(delta**2)
            else:
                loss = -jnp.mean((solved - baseline) * jnp.sum(tr.log_pf, 0))
            return loss, solved.mean()

        def it(carry, k):
            params, opt, baseline = carry
            (loss, succ), g = jax.value_and_grad(loss_fn, has_aux=True)(params, k, baseline)
            up, opt = tx.update(g, opt, params)
            params = optax.apply_updates(params, up)
            baseline = hp.baseline_decay * baseline + (1 - hp.baseline_decay) * succ
            return (params, opt, baseline), {"train/loss": loss, "train/success": succ}

        keys = jax.random.split(k_run, config.num_iterations)
        (params, _, _), m = jax.lax.scan(it, (params, tx.init(params), jnp.float32(0.0)), keys)
        return params, m

    def evaluate(key, params, puzzles: np.ndarray, n_samples: int = 64):
        """Per puzzle: (success rate, distinct correct operation sequences) over n_samples."""
        pobj = jnp.asarray(np.repeat(np.stack([puzzle_obj(p) for p in puzzles]), n_samples, 0))
        tr = jax.jit(lambda k, p: forward_rollout(k, p, env, ep, apply, pobj.shape[0], init_obj=pobj))(
            key, params)
        solved = np.asarray(jax.vmap(env.is_solved)(tr.terminal_obj)).reshape(len(puzzles), n_samples)
        seqs = np.asarray(tr.terminal_obj[:, 32:35]).reshape(len(puzzles), n_samples, 3)
        distinct = [len({tuple(s) for s, ok in zip(seqs[i], solved[i]) if ok}) for i in range(len(puzzles))]
        return solved.mean(1), np.asarray(distinct)

    train.evaluate = evaluate
    train.env = env
    return train
