"""Configs for experiments/eval_objective.py: `--config=experiments/configs/meta_eval.py:<variant>`.

Derived from the dataclass `lfx.meta.evaluate.EvalConfig`, so every field is settable as
`--config.<field>=`.

Variants:
  front (default; the README's main job): the shipped TA-LPO and LPO against PPO on CartPole-v1 at
    lifetimes x1, x0.5, x2 of the meta-training lifetime (5e4 steps), 8 seeds.
  cartpole_cpu: the shipped CartPole CPU-scale TA-LPO and LPO against PPO, lifetimes x0.25..x4 of the
    meta-training lifetime (5e4 steps) on CartPole-v1, and x1 on held-out Acrobot-v1; 8 seeds.
  brax_heldout: the shipped objectives and PPO on held-out brax/inverted_pendulum (spring backend)
    only, lifetimes x1, x0.5, x2 of 2.6e5 steps with brax-style PPO settings (see
    `env_overrides_kwargs`), 8 seeds; <= 20 min on 2 CPU cores. Needs the brax extra.
  quick: 2 lifetimes, 2 seeds (smoke).

`env_overrides_kwargs` maps an environment to the PPO settings that differ from the CartPole ones:
any of `lfx.meta.evaluate.OVERRIDABLE` (PPOConfig fields, `base_timesteps` = that environment's x1
lifetime) and `hparams` (a dict of `lfx.rl.ppo.HParams` fields).
"""

import dataclasses

from lfx.experiment import to_configdict
from lfx.experiment.config import variant_config
from lfx.meta.evaluate import OVERRIDABLE, EvalConfig  # noqa: F401 (OVERRIDABLE: documented above)

# experiments/configs/ppo.py:inverted_pendulum_small (docs/RESULTS.md's brax row: 64 envs x 32 steps
# learns to ~100 by 1e5 steps and ends near 70 after 1e6): spring backend, observation and reward
# normalisation, lr 3e-4, no entropy bonus. x1 = 128 updates of 2048 steps.
INVERTED_PENDULUM = {
    "base_timesteps": 128 * 64 * 32, "env_kwargs": {"backend": "spring"}, "num_envs": 64,
    "num_steps": 32, "num_minibatches": 4, "hidden_sizes": (64, 64), "normalize_obs": True,
    "normalize_reward": True, "hparams": {"lr": 3e-4, "ent_coef": 0.0},
}
BASE = EvalConfig()

VARIANTS = {
    "front": lambda: to_configdict(dataclasses.replace(
        BASE, lifetime_multipliers=(1.0, 0.5, 2.0), heldout_envs=())),
    "cartpole_cpu": lambda: to_configdict(BASE),
    "brax_heldout": lambda: to_configdict(dataclasses.replace(
        BASE, lifetime_multipliers=(), heldout_envs=("brax/inverted_pendulum",),
        heldout_multipliers=(1.0, 0.5, 2.0),
        env_overrides_kwargs=(("brax/inverted_pendulum", INVERTED_PENDULUM),))),
    "quick": lambda: to_configdict(dataclasses.replace(
        BASE, lifetime_multipliers=(0.25, 1.0), heldout_multipliers=(0.25,), num_seeds=2)),
}


def get_config(variant: str = "front"):
    return variant_config(VARIANTS, variant, "meta_eval")
