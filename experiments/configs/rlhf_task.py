"""Configs for experiments/rlhf_task.py: `--config=experiments/configs/rlhf_task.py:<variant>`.

Derived from `lfx.pref.arithmetic.ArithmeticTaskConfig`.

Variants:
  arithmetic       the default task (add / sub / mul on 2-digit operands, 4000 SFT steps of the
                   tiny Llama: held-out pass@1 0.27, pass@8 0.66 at temperature 1).
  arithmetic_tiny  the same at test size.
"""

from lfx.experiment import to_configdict
from lfx.experiment.config import variant_config
from lfx.pref import arithmetic

VARIANTS = {
    "arithmetic": lambda: to_configdict(arithmetic.ArithmeticTaskConfig()),
    "arithmetic_tiny": lambda: to_configdict(arithmetic.ArithmeticTaskConfig(
        num_sft_problems=512, num_train_prompts=64, num_eval_prompts=32, sft_steps=30,
        sft_batch=32, dim=16, hidden_dim=32, num_samples=2)),
}


def get_config(variant: str = "arithmetic"):
    return variant_config(VARIANTS, variant, "rlhf_task")
