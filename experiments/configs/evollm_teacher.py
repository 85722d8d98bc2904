"""Configs for experiments/evollm_teacher.py: teacher trajectories -> small char-level Llama.

Derived from the dataclasses (`lfx.es.evollm.teacher.TeacherConfig` and
`lfx.experiment.RunConfig` at the top level, `lfx.lm.train.HParams` under `hparams`), so every
field is settable as `--config.<field>=`. `seed` (RunConfig) seeds the tasks, the LM's init and the
batch order; one LM is trained (`num_seeds` = 1).

Variants: default (9,600 examples, 2,000 steps), smoke (a few tasks, 20 steps).
"""

from lfx.es.evollm.teacher import TeacherConfig
from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.lm.train import HParams


def _config(teacher: TeacherConfig = TeacherConfig(), chunk_size: int = 100,
            checkpoint_every: int = 500):
    run = RunConfig(seed=0, num_seeds=1, chunk_size=chunk_size, checkpoint_every=checkpoint_every)
    return to_configdict(teacher, run, hparams=HParams(lr=3e-3))


VARIANTS = {
    "default": _config,
    "smoke": lambda: _config(TeacherConfig(tasks_per_dim=8, num_steps=20, dims="2"),
                             chunk_size=5, checkpoint_every=10),
}


def get_config(variant: str = "default"):
    return variant_config(VARIANTS, variant, "evollm_teacher")
