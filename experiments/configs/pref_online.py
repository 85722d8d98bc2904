"""Configs for experiments/pref_online.py: `--config=experiments/configs/pref_online.py:<variant>`.

Derived from `lfx.pref.online.OnlineConfig`, `lfx.pref.data.TaskSpec` and `lfx.experiment.RunConfig`
at the top level and the traced `HParams` under `hparams`.

Variants:
  rloo       RLOO on task (a): 300 updates of 16 prompts x 4 samples (64 responses per update),
             full fine-tuning, lr 1e-3, an evaluation every 50 updates, 5 seeds.
  rloo_tiny  test size.
"""

import dataclasses

from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.pref.data import TaskSpec
from lfx.pref.online import HParams, OnlineConfig

RLOO = OnlineConfig(num_updates=300, prompts_per_update=16, samples_per_prompt=4, eval_every=50)
RUN = RunConfig(num_seeds=5, chunk_size=50, checkpoint_every=100)

VARIANTS = {
    "rloo": lambda: to_configdict(RLOO, TaskSpec(), RUN, hparams=HParams()),
    "rloo_tiny": lambda: to_configdict(
        dataclasses.replace(RLOO, num_updates=20, prompts_per_update=4, eval_every=10),
        TaskSpec(task="datasets/pref/lexicon_tiny"),
        RunConfig(num_seeds=2, chunk_size=10, checkpoint_every=10), hparams=HParams()),
}


def get_config(variant: str = "rloo"):
    return variant_config(VARIANTS, variant, "pref_online")
