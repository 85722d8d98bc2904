"""Configs for experiments/pref_task.py: `--config=experiments/configs/pref_task.py:<variant>`.

Derived from `lfx.pref.lexicon.LexiconTaskConfig`, so every field is settable as `--config.<field>=`.

Variants:
  lexicon       task (a) at its default size (2048 pairs, SFT pre-trained 1500 steps; ~1 CPU minute).
  lexicon_tiny  the same at test size.
"""

from lfx.experiment import to_configdict
from lfx.experiment.config import variant_config
from lfx.pref.lexicon import LexiconTaskConfig

VARIANTS = {
    "lexicon": lambda: to_configdict(LexiconTaskConfig()),
    "lexicon_tiny": lambda: to_configdict(LexiconTaskConfig(
        num_pretrain_docs=512, pretrain_steps=60, pretrain_batch=32, num_pairs=128,
        num_eval_prompts=32, dim=32, hidden_dim=64)),
}


def get_config(variant: str = "lexicon"):
    return variant_config(VARIANTS, variant, "pref_task")
