"""Configs for experiments/meta_train.py: `--config=experiments/configs/meta_train.py:<variant>`.

Derived from the dataclasses (`lfx.meta.lpo_train.MetaTrainConfig` and `lfx.experiment.RunConfig`
at the top level, the traced ES settings `lfx.meta.es.HParams` under `hparams`, the inner PPO
agent's `lfx.rl.ppo.HParams` under `agent_hparams`), so every field is settable as `--config.<field>=`.

Variants:
  ta_lpo_cartpole_cpu (default) / lpo_cartpole_cpu: CPU scale (<= 30 min on 2 cores). CartPole-v1,
    4 envs x 128 steps, 5e4 steps per lifetime (97 updates), population 16 x 1 seed, PPO-initialised
    drift.
  ta_lpo_spaceinvaders / lpo_spaceinvaders: paper scale for an accelerator (MinAtar SpaceInvaders,
    64 envs x 128 steps, 1e7 steps per lifetime, population 64, 800 generations; untested here).
  ta_lpo_multi_lifetime: TA-LPO with log N features over lifetimes x0.5, x1, x2 (cycled per gen),
    PPO-initialised like the CPU variants above (from the unclipped `ta_lpo_lifetime` drift with
    output scale 0.1 the population's CartPole return fell from ~55 to ~23 in 44 generations;
    docs/results/meta.md).
  ta_lpo_multi_env_cpu: TA-LPO meta-trained on CartPole-v1 and Acrobot-v1 together, each return
    normalised between a random policy's return and a PPO return at this budget.
  tiny: seconds-scale smoke configuration.
"""

import dataclasses

from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.meta import es
from lfx.meta.lpo_train import MetaTrainConfig
from lfx.rl import ppo

RUN = RunConfig(seed=0, num_seeds=1, chunk_size=1, checkpoint_every=5)
ES_HP = es.HParams(lr=0.05, lr_decay=0.99, sigma=0.05, sigma_decay=0.99)


def _config(static=MetaTrainConfig(), run=RUN, hparams=ES_HP, agent_hparams=ppo.HParams()):
    return to_configdict(static, run, hparams=hparams, agent_hparams=agent_hparams)


def _spaceinvaders(drift: str):
    static = MetaTrainConfig(
        drift=drift, env_names=("SpaceInvaders-MinAtar",),
        return_table_kwargs=(("SpaceInvaders-MinAtar", 167.1),), num_envs=64,
        total_timesteps=10_000_000, num_minibatches=8, network="minatar_conv", activation="relu",
        population_size=64, num_generations=800,
    )
    return _config(static, hparams=dataclasses.replace(ES_HP, lr=0.03, sigma=0.03),
                   agent_hparams=ppo.HParams(lr=5e-3))


VARIANTS = {
    "ta_lpo_cartpole_cpu": lambda: _config(MetaTrainConfig(pretrained_name="ta_lpo/cartpole_cpu")),
    "lpo_cartpole_cpu": lambda: _config(
        MetaTrainConfig(drift="lpo_ppo_init", pretrained_name="lpo/cartpole_cpu")),
    "ta_lpo_spaceinvaders": lambda: _spaceinvaders("ta_lpo_ppo_init"),
    "lpo_spaceinvaders": lambda: _spaceinvaders("lpo_ppo_init"),
    "ta_lpo_multi_lifetime": lambda: _config(MetaTrainConfig(
        drift="ta_lpo_lifetime_ppo_init", lifetime_multipliers=(0.5, 1.0, 2.0),
        lifetime_sampling="cycle")),
    # PPO at this budget (5e4 steps, 8 seeds; docs/results/meta.md): CartPole 220, Acrobot -395.
    "ta_lpo_multi_env_cpu": lambda: _config(MetaTrainConfig(
        env_names=("CartPole-v1", "Acrobot-v1"),
        return_table_kwargs=(("CartPole-v1", 220.0), ("Acrobot-v1", -395.0)))),
    "tiny": lambda: _config(MetaTrainConfig(total_timesteps=4 * 128 * 4, population_size=4,
                                            num_generations=2)),
}


def get_config(variant: str = "ta_lpo_cartpole_cpu"):
    return variant_config(VARIANTS, variant, "meta_train")
