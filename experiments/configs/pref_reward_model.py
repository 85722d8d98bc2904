"""Configs for experiments/pref_reward_model.py: `--config=...:<variant>`.

Top level: `lfx.pref.data.TaskSpec` (the task whose pairs train the model) and
`lfx.pref.reward_model.RewardModelConfig` and `ProxyCheck` (`seed`, `num_samples`: responses
sampled from the reference per evaluation prompt to measure how well the model's scores track the
true reward); `hparams`: its `HParams`.

Variants:
  default  the Bradley-Terry reward model (lr 3e-3), 300 updates of 64 of the task's 2048 pairs.
  tiny     test size.
"""

from lfx.experiment import to_configdict
from lfx.experiment.config import variant_config
from lfx.pref import reward_model
from lfx.pref.data import TaskSpec


def _config(spec, rm, num_samples):
    return to_configdict(spec, rm, reward_model.ProxyCheck(num_samples=num_samples),
                         hparams=reward_model.HParams(lr=3e-3))


VARIANTS = {
    "default": lambda: _config(TaskSpec(), reward_model.RewardModelConfig(), 4),
    "tiny": lambda: _config(TaskSpec(task="datasets/pref/lexicon_tiny"),
                            reward_model.RewardModelConfig(num_updates=10, batch_size=16), 1),
}


def get_config(variant: str = "default"):
    return variant_config(VARIANTS, variant, "pref_reward_model")
