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

__all__ = [
    "DRIFT_CONFIGS",
    "DriftConfig",
    "drift_apply",
    "init_drift",
    "lpo_objective",
    "make_lpo_objective",
    "ppo_clip_objective",
]
