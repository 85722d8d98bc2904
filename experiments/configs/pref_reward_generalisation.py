"""Configs for experiments/pref_reward_generalisation.py: `--config=...:<variant>`.

Top level: `lfx.pref.data.TaskSpec` (the task; `eval_reward` labels the evaluation sets) and
`lfx.pref.shift.ShiftStudy` (seeds, set sizes, samplers); `dpo` / `dpo_hparams`:
`lfx.pref.recipe.PrefConfig` / `HParams`; `rm` / `rm_hparams`:
`lfx.pref.reward_model.RewardModelConfig` / `HParams`. Every field is settable as
`--config.<field>=` (e.g. `--config.rm_hparams.lr=1e-3`).

Variants:
  default  DPO (sigmoid, beta 0.1, lr 1e-3) and the Bradley-Terry reward model (lr 3e-3), each
           300 updates of 64 of the task's 2048 pairs (~9 epochs), 5 seeds, 512 pairs per
           evaluation set (a few CPU minutes).
  tiny     test size (datasets from `pref_task.py:lexicon_tiny`).
"""

from lfx.experiment import to_configdict
from lfx.experiment.config import variant_config
from lfx.pref import recipe, reward_model
from lfx.pref.data import TaskSpec
from lfx.pref.shift import ShiftStudy

VARIANTS = {
    "default": lambda: to_configdict(
        TaskSpec(), ShiftStudy(),
        dpo=recipe.PrefConfig(loss_type="sigmoid", num_updates=300, batch_size=64, eval_every=0),
        dpo_hparams=recipe.HParams(lr=1e-3, beta=0.1),
        rm=reward_model.RewardModelConfig(num_updates=300, batch_size=64),
        rm_hparams=reward_model.HParams(lr=3e-3)),
    "tiny": lambda: to_configdict(
        TaskSpec(task="datasets/pref/lexicon_tiny"), ShiftStudy(num_seeds=2, num_pairs=64),
        dpo=recipe.PrefConfig(loss_type="sigmoid", num_updates=10, batch_size=16, eval_every=0),
        dpo_hparams=recipe.HParams(lr=1e-3, beta=0.1),
        rm=reward_model.RewardModelConfig(num_updates=10, batch_size=16),
        rm_hparams=reward_model.HParams(lr=3e-3)),
}


def get_config(variant: str = "default"):
    return variant_config(VARIANTS, variant, "pref_reward_generalisation")
