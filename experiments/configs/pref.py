"""Configs for experiments/pref.py: `--config=experiments/configs/pref.py:<variant>`.

Derived from `lfx.pref.recipe.PrefConfig`, `lfx.pref.data.TaskSpec` and `lfx.experiment.RunConfig`
at the top level and the traced `HParams` under `hparams`, so every field is settable as
`--config.<field>=` (`--config.loss_type=` picks any `lfx.pref.losses.LOSS_TYPES`).

Variants:
  dpo        sigmoid DPO (Rafailov et al. 2023) on task (a), beta 0.1, full fine-tuning, 300
             updates of 64 pairs, an evaluation (256 prompts) every 50 updates, 5 seeds.
  dpo_lora   the same with rank-8 LoRA on every attention and MLP weight.
  dpo_tiny   test size (datasets from `pref_task.py:lexicon_tiny`).
"""

import dataclasses

from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.pref.data import TaskSpec
from lfx.pref.recipe import HParams, PrefConfig

DPO = PrefConfig(loss_type="sigmoid", num_updates=300, batch_size=64, eval_every=50)
RUN = RunConfig(num_seeds=5, chunk_size=50, checkpoint_every=100)

VARIANTS = {
    "dpo": lambda: to_configdict(DPO, TaskSpec(), RUN, hparams=HParams()),
    "dpo_lora": lambda: to_configdict(
        dataclasses.replace(DPO, lora_rank=8, lora_targets=("wq", "wk", "wv", "wo", "w_gate",
                                                            "w_up", "w_down")),
        TaskSpec(), RUN, hparams=HParams(lr=3e-3)),
    "dpo_tiny": lambda: to_configdict(
        dataclasses.replace(DPO, num_updates=20, batch_size=16, eval_every=10),
        TaskSpec(task="datasets/pref/lexicon_tiny"),
        RunConfig(num_seeds=2, chunk_size=10, checkpoint_every=10), hparams=HParams()),
}


def get_config(variant: str = "dpo"):
    return variant_config(VARIANTS, variant, "pref")
