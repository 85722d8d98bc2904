"""Discovered RL objectives: LPO/TA-LPO drift functions, LPG/TA-LPG, and their meta-training."""

from lfx.meta.lpo import (
    DRIFT_CONFIGS,
    DriftConfig,
    drift_apply,
    init_drift,
    lpo_objective,
    make_lpo_objective,
    ppo_clip_objective,
)
from lfx.meta.pretrained import available as available_pretrained
from lfx.meta.pretrained import load_pretrained

__all__ = [
    "DRIFT_CONFIGS",
    "DriftConfig",
    "drift_apply",
    "init_drift",
    "lpo_objective",
    "make_lpo_objective",
    "ppo_clip_objective",
    "available_pretrained",
    "load_pretrained",
]
