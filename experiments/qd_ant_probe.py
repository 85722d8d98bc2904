"""Two checks on AntMaze-sparse behind statements in docs/results/qd.md.

    python experiments/qd_ant_probe.py --mode=flail     # how high do flailing random ants lift the torso?
    python experiments/qd_ant_probe.py --mode=replay --seed=1
    python experiments/qd_ant_probe.py --mode=replay --config.budget=500   # any qd_sparse.py:ant field

* flail: 200 random genomes (the policy initialiser), as drawn and scaled x3, rolled out for one
  episode; prints the median / max torso height, the fraction above 1.2 m, and how far they walk.
* replay: runs NS with the `ant` config (experiments/configs/qd_sparse.py:ant, checked as
  experiments/qd_sparse.py checks it) for one seed, then replays the best genome alone (not in a
  vmapped batch) and prints its torso path and where it crossed y = 0 (through the inner wall would
  mean x < 0.95). Prints only; writes nothing.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from lfx.experiment import cli
from lfx.qd import comparison as qdc
from lfx.qd.ns import make_ns

_CONFIG = config_flags.DEFINE_config_file("config", os.path.join(cli.CONFIG_DIR, "qd_sparse.py:ant"),
                                          "A qd_sparse config (its NS settings and task are used).")
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
    cd = _CONFIG.value
    cd.algorithms = ("ns",)  # only NS is replayed: the others need not be built
    comp = qdc.build(cd)
    c, task, hp = comp.config, comp.task, comp.settings[0]
    if _MODE.value == "flail":
        paths = jax.jit(jax.vmap(lambda g: torso_path(task, g)))
        for scale in (1.0, 3.0):
            p = np.asarray(paths(task.init_genomes(jax.random.key(5), 200) * scale))
            z = p[:, :, 2].max(1)
            walked = np.abs(np.diff(p[:, :, :2], axis=1)).sum((1, 2))
            print(f"genomes x{scale:g}: torso z max: median {np.median(z):.2f}, max {z.max():.2f}, "
                  f"fraction above 1.2 m {np.mean(z > 1.2):.3f}; longest path {walked.max():.1f} m")
        return
    state, metrics = jax.jit(make_ns(task, c.ns_config(), c.budget).train)(
        jax.random.key(_SEED.value), hp)
    print("NS final:", {k: np.asarray(v[-1]).item() for k, v in metrics.items()})
    p = np.asarray(jax.jit(lambda g: torso_path(task, g))(state.tracker.best_genome))
    print("replayed alone: final", p[-1].round(2).tolist(), "max z", float(p[:, 2].max().round(2)))
    print("path every 10 steps:", p[::10, :2].round(2).tolist())
    cross = (p[1:, 1] > 0) != (p[:-1, 1] > 0)
    print("crossed y = 0 at x:", p[1:, 0][cross].round(2).tolist())


if __name__ == "__main__":
    app.run(main)
