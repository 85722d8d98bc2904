"""Configs for experiments/offline_datasets.py: `--config=experiments/configs/offline_datasets.py:<variant>`.

Derived from `lfx.offline.generate.GenerateConfig` (SAC's config under `sac_config`, its HParams under
`sac_hparams`) plus the run settings, so every field is settable as `--config.<field>=`.

Variants:
  pendulum       gymnax Pendulum-v1 (the default; CPU minutes): SAC 20k steps (lfx's Pendulum SAC
                 setting, greedy return about -146, docs/results/rl.md), an actor checkpoint every 200 steps,
                 50k transitions per rollout level (250 episodes).
  pendulum_tiny  the same at toy size (tests).
  hopper, halfcheetah, walker2d   brax (spring backend), brax's SAC settings (`lfx.rl.sac.brax_settings`),
                 a checkpoint every 2560 updates (327,680 steps), 1M transitions per level as D4RL
                 (accelerator scale).
"""

import dataclasses

from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.offline.generate import GenerateConfig
from lfx.rl import sac


def _config(gen: GenerateConfig, run: RunConfig):
    return to_configdict(gen, run)


def _pendulum():
    # SAC learns Pendulum abruptly (about -1100 to -290 within 1000 steps): checkpoints every 200 steps
    return _config(GenerateConfig(sac_config=sac.SACConfig(), snapshot_every=50, size=50_000, num_envs=10),
                   RunConfig(num_seeds=1, chunk_size=50, checkpoint_every=1250))


def _pendulum_tiny():
    tiny = sac.SACConfig(total_timesteps=2_000, learning_starts=500, buffer_size=2_000, hidden_sizes=(32, 32),
                         batch_size=64)
    return _config(GenerateConfig(sac_config=tiny, snapshot_every=100, size=1_000, num_envs=5, ref_episodes=4),
                   RunConfig(num_seeds=1, chunk_size=100, checkpoint_every=100))


def _brax(name: str):
    static, hparams = sac.brax_settings(name)
    static = dataclasses.replace(static, eval_every=0)
    gen = GenerateConfig(sac_config=static, sac_hparams=hparams, snapshot_every=2560, size=1_000_000,
                         num_envs=100)
    return _config(gen, RunConfig(num_seeds=1, chunk_size=2560, checkpoint_every=2560))


VARIANTS = {
    "pendulum": _pendulum,
    "pendulum_tiny": _pendulum_tiny,
    **{name: (lambda n=name: _brax(n)) for name in sac.BRAX_SAC},
}


def get_config(variant: str = "pendulum"):
    return variant_config(VARIANTS, variant, "offline_datasets")
