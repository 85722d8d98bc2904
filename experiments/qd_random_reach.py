"""How sparse is a task? The fraction of random policies (lfx's MLP initialiser) that end in each reward area.

    python experiments/qd_random_reach.py --env=Curling-sparse --hidden=5,5,5 --num=20000

Draws `num` genomes from `MLPPolicy.init` (what random search samples), rolls each out once and
prints, per reward area, the number and fraction that end inside it, and the fraction whose
descriptor moved at all from the first policy-independent reset value. With p the fraction for an
area, random search with a budget of B evaluations misses it with probability (1 - p)^B.
"""

from __future__ import annotations

import jax
import numpy as np
from absl import app, flags

from lfx.qd.task import make_task

_ENV = flags.DEFINE_string("env", "Curling-sparse", "a sparse-reward env of lfx.envs.sparse")
_HIDDEN = flags.DEFINE_list("hidden", ["5", "5", "5"], "hidden layer sizes of the MLP policy")
_NUM = flags.DEFINE_integer("num", 20_000, "number of random policies")
_BATCH = flags.DEFINE_integer("batch", 2_000, "policies per vmapped call")
_SEED = flags.DEFINE_integer("seed", 0, "random seed")
_BUDGET = flags.DEFINE_integer("budget", 10_000, "budget B for the miss probability (1 - p)^B")


def main(argv):
    del argv
    task = make_task(_ENV.value, hidden=tuple(int(h) for h in _HIDDEN.value), image_size=0)
    evaluate = jax.jit(task.evaluate)
    areas, descs = [], []
    for i in range(-(-_NUM.value // _BATCH.value)):
        k = jax.random.fold_in(jax.random.key(_SEED.value), i)
        ev = evaluate(k, task.init_genomes(jax.random.fold_in(k, 1), _BATCH.value))
        areas.append(np.asarray(ev.reward_area))
        descs.append(np.asarray(ev.descriptor))
    area = np.concatenate(areas)[: _NUM.value]
    desc = np.concatenate(descs)[: _NUM.value]
    _, s0 = task.env.reset_env(jax.random.key(0), task.env_params)
    start = np.asarray(task.env.descriptor(s0, task.env_params))
    moved = np.linalg.norm(desc - start, axis=1) > 1e-3
    print(f"{_ENV.value}, hidden {tuple(_HIDDEN.value)}, genome {task.genome_dim}, {len(area)} random policies:")
    print(f"  descriptor moved from its start value: {moved.mean():.3f}")
    for a in range(task.num_reward_areas):
        n = int((area == a).sum())
        p = n / len(area)
        print(f"  reward area {a}: {n} ({p:.4%}); random search misses it in {_BUDGET.value} evaluations "
              f"with probability {(1 - p) ** _BUDGET.value:.3g}")


if __name__ == "__main__":
    app.run(main)
