"""Configs for experiments/dqn.py: `--config=experiments/configs/dqn.py:<variant>`.

Derived from the dataclasses (`lfx.rl.dqn.DQNConfig`, `lfx.experiment.RunConfig` at the top level,
`lfx.rl.dqn.HParams` under `hparams`), so every field is settable as `--config.<field>=`.

Variants:
  cartpole   PureJaxRL's DQN CartPole-v1 settings (`purejaxrl/dqn.py`: 10 envs, buffer 10 000, batch 128,
             one gradient step per 10 env steps from 10 000 steps on, target copy every 500 env steps,
             lr 2.5e-4, eps 1 -> 0.05 over 2.5e5 steps, MSE, 5e5 steps), grouped 10 env steps x 10
             gradient steps per update (lfx.rl.dqn's docstring); 5 seeds, a greedy evaluation
             (10 episodes) every 250 updates (25 000 env steps).
  cartpole_interleaved  the same with PureJaxRL's exact interleaving (one env step of the 10 envs, one
             gradient step, per update; 50 000 updates).
"""

from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.rl import dqn


def _config(static: dqn.DQNConfig, run: RunConfig, **hparams):
    return to_configdict(static, run, hparams=dqn.HParams(**hparams))


def _cartpole():
    static = dqn.DQNConfig(eval_every=250, eval_episodes=10)
    return _config(static, RunConfig(num_seeds=5, chunk_size=250, checkpoint_every=1000))


def _cartpole_interleaved():
    static = dqn.DQNConfig(num_steps=1, gradient_steps=1, target_update_every=50, eval_every=2500,
                           eval_episodes=10)
    return _config(static, RunConfig(num_seeds=5, chunk_size=2500, checkpoint_every=10_000))


VARIANTS = {"cartpole": _cartpole, "cartpole_interleaved": _cartpole_interleaved}


def get_config(variant: str = "cartpole"):
    return variant_config(VARIANTS, variant, "dqn")
