"""Configs for experiments/qd_random_reach.py, derived from `lfx.qd.reach.ReachConfig`.

Variants: curling (the paper's 3 x 5 controller, the default), curling_16 (one hidden layer of 16).
"""

from lfx.experiment import to_configdict
from lfx.experiment.config import variant_config
from lfx.qd.reach import ReachConfig

VARIANTS = {
    "curling": lambda: to_configdict(ReachConfig()),
    "curling_16": lambda: to_configdict(ReachConfig(hidden=(16,))),
}


def get_config(variant: str = "curling"):
    return variant_config(VARIANTS, variant, "qd_random_reach")
