"""Configs for experiments/pqn.py: `--config=experiments/configs/pqn.py:<variant>`.

Derived from the dataclasses (`lfx.rl.pqn.PQNConfig`, `lfx.experiment.RunConfig` at the top level,
`lfx.rl.pqn.HParams` under `hparams`), so every field is settable as `--config.<field>=`.

Variants (purejaxql's configs, github.com/mttga/purejaxql `purejaxql/config/alg/`):
  cartpole  `pqn_cartpole.yaml`: 32 envs x 64 steps, 4 epochs x 16 minibatches, (256, 256) LayerNorm
            MLP, lr 1e-4 decayed linearly, max_grad_norm 10, reward_scale 0.1, gamma 0.99, lambda 0.95,
            eps 1 -> 0.2 over 20 % of the run, 5e5 steps; 5 seeds, a greedy evaluation (10 episodes)
            every 24 updates (~4.9e4 env steps).
  breakout, asterix, spaceinvaders, freeway  `pqn_minatar.yaml` (written for Asterix; purejaxql uses
            it for every MinAtar game): 128 envs x 32 steps, 2 epochs x 32 minibatches, the MinAtar
            conv torso (Conv16 3x3 -> LayerNorm -> ReLU -> Dense128 -> LayerNorm -> ReLU, He-normal),
            lr 5e-4 decayed linearly, max_grad_norm 10, gamma 0.99, lambda 0.65, eps 1 -> 0.05 over
            10 % of the run, reward_scale 1, 1e7 steps; 3 seeds, a greedy evaluation every 25 updates.
            On 2 CPU cores use `--config.total_timesteps=2000000` (docs/results/dqn_pqn.md): the
            decays then run over the shorter run, as purejaxql's own do when TOTAL_TIMESTEPS_DECAY
            = TOTAL_TIMESTEPS.
"""

import functools

from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.rl import pqn


def _config(static: pqn.PQNConfig, run: RunConfig, **hparams):
    return to_configdict(static, run, hparams=pqn.HParams(**hparams))


def _cartpole():
    static = pqn.PQNConfig(eval_every=24, eval_episodes=10)
    return _config(static, RunConfig(num_seeds=5, chunk_size=24, checkpoint_every=48))


def _minatar(env_name: str):
    static = pqn.PQNConfig(
        env_name=env_name, num_envs=128, num_steps=32, total_timesteps=10_000_000, num_epochs=2,
        num_minibatches=32, network="minatar_conv", hidden_sizes=(128,), layer_norm=True,
        kernel_init="he_normal", eval_every=25, eval_episodes=16,
    )
    return _config(static, RunConfig(num_seeds=3, chunk_size=25, checkpoint_every=100), lr=5e-4,
                   td_lambda=0.65, eps_end=0.05, eps_decay_fraction=0.1, reward_scale=1.0)


VARIANTS = {
    "cartpole": _cartpole,
    **{name.split("-")[0].lower(): functools.partial(_minatar, name)
       for name in ("Breakout-MinAtar", "Asterix-MinAtar", "SpaceInvaders-MinAtar", "Freeway-MinAtar")},
}


def get_config(variant: str = "cartpole"):
    return variant_config(VARIANTS, variant, "pqn")
