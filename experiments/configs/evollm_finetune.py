"""Configs for experiments/evollm_finetune.py: LoRA fine-tuning of SmolLM2 on teacher trajectories.

Derived from the dataclasses (`lfx.lm.lora.FinetuneConfig` and `lfx.experiment.RunConfig` at the
top level, `lfx.lm.train.HParams` under `hparams`), so every field is settable as
`--config.<field>=`. `seed` (RunConfig) seeds the adapters' init and the data permutation.

Variants: default (400 steps, checkpoints every 20), smoke (3 steps, 8 held-out examples).
"""

from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.lm.lora import FinetuneConfig
from lfx.lm.train import HParams


def _config(ft: FinetuneConfig = FinetuneConfig(), chunk_size: int = 10,
            checkpoint_every: int = 20):
    run = RunConfig(seed=0, num_seeds=1, chunk_size=chunk_size, checkpoint_every=checkpoint_every)
    return to_configdict(ft, run, hparams=HParams(lr=1e-3))


VARIANTS = {
    "default": _config,
    "smoke": lambda: _config(FinetuneConfig(num_steps=3, eval_examples=8), chunk_size=1,
                             checkpoint_every=1),
}


def get_config(variant: str = "default"):
    return variant_config(VARIANTS, variant, "evollm_finetune")
