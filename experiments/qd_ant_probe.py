"""Two checks on AntMaze-sparse behind statements in docs/results/qd.md.

    python experiments/qd_ant_probe.py --mode=flail     # how high do flailing random ants lift the torso?
    python experiments/qd_ant_probe.py --mode=replay --seed=1

* flail: 200 random genomes (the policy initialiser), as drawn and scaled x3, rolled out for one
  episode; prints the median / max torso height, the fraction above 1.2 m, and how far they walk.
* replay: runs NS with the `ant` config for one seed (as experiments/qd_sparse.py does), then replays
  the best genome alone (not in a vmapped batch) and prints its torso path and where it crossed
  y = 0 (through the inner wall would mean x < 0.95).
"""

from __future__ import annotations

import os
import sys

import jax
import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "configs"))
import qd_sparse as configs

from lfx.qd.autoencoder import AEConfig
from lfx.qd.explore import ExplorerConfig, run_explorer
from lfx.qd.ns import NSConfig
from lfx.qd.task import make_task

_MODE = flags.DEFINE_enum("mode", "flail", ["flail", "replay"], "which check")
_SEED = flags.DEFINE_integer("seed", 1, "NS seed for --mode=replay")


def torso_path(task, genome):
    """[T, 3] torso positions of one episode of `genome`."""
    env, params = task.env, task.env_params

    def body(carry, _):
        obs, s = carry
        obs, s, _, _, _ = env.step_env(jax.random.key(0), s, task.policy.apply(genome, obs), params)
        return (obs, s), s.pipeline.x.pos[0]

    obs, s = env.reset_env(jax.random.key(0), params)
    return jax.lax.scan(body, (obs, s), None, length=params.max_steps_in_episode)[1]


def main(argv):
    del argv
    c = configs.get_config("ant")
    task = make_task(c.env, hidden=tuple(c.hidden), image_size=c.image_size)
    if _MODE.value == "flail":
        paths = jax.jit(jax.vmap(lambda g: torso_path(task, g)))
        for scale in (1.0, 3.0):
            p = np.asarray(paths(task.init_genomes(jax.random.key(5), 200) * scale))
            z = p[:, :, 2].max(1)
            walked = np.abs(np.diff(p[:, :, :2], axis=1)).sum((1, 2))
            print(f"genomes x{scale:g}: torso z max: median {np.median(z):.2f}, max {z.max():.2f}, "
                  f"fraction above 1.2 m {np.mean(z > 1.2):.3f}; longest path {walked.max():.1f} m")
        return
    ns = NSConfig(population_size=c.population_size, offspring_per_parent=c.offspring_per_parent,
                  archive_capacity=c.archive_capacity, archive_add=c.archive_add, k=c.k, sigma=c.sigma)
    ex = ExplorerConfig(mode="ns", ns=ns, ae=AEConfig(image_size=c.image_size, latent_dim=c.latent_dim),
                        retrain_every=c.retrain_every)
    tracker, _, hist = run_explorer(jax.random.key(_SEED.value), task, ex, c.budget)
    print("NS final:", hist[-1])
    p = np.asarray(jax.jit(lambda g: torso_path(task, g))(tracker.best_genome))
    print("replayed alone: final", p[-1].round(2).tolist(), "max z", float(p[:, 2].max().round(2)))
    print("path every 10 steps:", p[::10, :2].round(2).tolist())
    cross = (p[1:, 1] > 0) != (p[:-1, 1] > 0)
    print("crossed y = 0 at x:", p[1:, 0][cross].round(2).tolist())


if __name__ == "__main__":
    app.run(main)
