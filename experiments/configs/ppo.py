"""Configs for experiments/ppo.py: `--config=experiments/configs/ppo.py:<variant>`.

Derived from the dataclasses (`lfx.rl.ppo.PPOConfig`, `lfx.experiment.RunConfig` at the top level,
`lfx.rl.ppo.HParams` under `hparams`), so every field is settable as `--config.<field>=`.

Variants: cartpole (PureJaxRL's defaults, the default), breakout, spaceinvaders, asterix, freeway
(MinAtar, PureJaxRL's MinAtar settings); inverted_pendulum, reacher, halfcheetah, hopper, walker2d
(brax's own PPO settings, spring backend, needs the brax extra); inverted_pendulum_small (the
64-env x 32-step CPU setting the meta-evaluation's held-out brax cell uses).

Brax's settings are those of brax's training notebook (`ppo.train(...)` per env). Translation to
lfx: brax collects `batch_size * num_minibatches` unrolls of `unroll_length` steps per update from
`num_envs` envs, so lfx's `num_steps = batch_size * num_minibatches * unroll_length / num_envs`
(same transitions per update and per minibatch); `num_updates_per_batch` -> `update_epochs`;
`discounting` -> `gamma`; `reward_scaling` -> `reward_scale`; `entropy_cost` -> `ent_coef`.
Brax's network: policy 4 x 32, value 5 x 256, swish, tanh-squashed Gaussian; no value clipping,
no gradient clipping (`max_grad_norm` 1e9 never binds), constant learning rate, observation
normalisation only. Two differences remain: brax computes GAE per `unroll_length` segment
(bootstrapping from the value after each segment) and recomputes it per minibatch with the current
value net; lfx runs GAE once over the whole `num_steps` rollout. Reacher uses `action_repeat=4` in
brax, which lfx does not have (one action per physics step here). Brax trains hopper and walker2d
with SAC, not PPO; their PPO variants here use the halfcheetah settings.
"""

import functools

from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.rl import ppo


def _config(static: ppo.PPOConfig, run: RunConfig = RunConfig(), **hparams):
    return to_configdict(static, run, hparams=ppo.HParams(**hparams))


def _minatar(env_name: str):
    # PureJaxRL's MinAtar settings: a 64-64 ReLU MLP over the flattened grid
    # (network="minatar_conv" selects the small conv torso instead).
    static = ppo.PPOConfig(env_name=env_name, num_envs=64, total_timesteps=10_000_000,
                           num_minibatches=8, activation="relu")
    return _config(static, RunConfig(num_seeds=4, chunk_size=20), lr=5e-3)


# brax's notebook: (num_timesteps, reward_scaling, unroll_length, num_updates_per_batch,
# discounting, entropy_cost, num_envs, batch_size); num_minibatches 32 and lr 3e-4 everywhere.
BRAX_PPO = {
    "inverted_pendulum": (2_000_000, 10.0, 5, 4, 0.97, 1e-2, 2048, 1024),
    "reacher": (50_000_000, 5.0, 50, 8, 0.95, 1e-3, 2048, 256),
    "halfcheetah": (50_000_000, 1.0, 20, 8, 0.95, 1e-3, 2048, 512),
    "hopper": (50_000_000, 1.0, 20, 8, 0.95, 1e-3, 2048, 512),  # brax: SAC; halfcheetah's PPO
    "walker2d": (50_000_000, 1.0, 20, 8, 0.95, 1e-3, 2048, 512),  # brax: SAC; halfcheetah's PPO
}


def _brax(name: str):
    steps, reward_scale, unroll, epochs, gamma, ent, num_envs, batch = BRAX_PPO[name]
    static = ppo.PPOConfig(
        env_name=f"brax/{name}", env_kwargs=(("backend", "spring"),), num_envs=num_envs,
        num_steps=batch * 32 * unroll // num_envs, total_timesteps=steps, update_epochs=epochs,
        num_minibatches=32, hidden_sizes=(32, 32, 32, 32), value_hidden_sizes=(256,) * 5,
        activation="swish", action_dist="tanh_normal", clip_value=False, anneal_lr=False,
        normalize_obs=True,
    )
    return _config(static, RunConfig(num_seeds=5), lr=3e-4, gamma=gamma, gae_lambda=0.95,
                   clip_eps=0.3, ent_coef=ent, vf_coef=0.5, max_grad_norm=1e9,
                   reward_scale=reward_scale)


def _inverted_pendulum_small():
    # The CPU setting lfx used before the brax settings (docs/RESULTS.md's first brax row).
    static = ppo.PPOConfig(
        env_name="brax/inverted_pendulum", env_kwargs=(("backend", "spring"),), num_envs=64,
        num_steps=32, total_timesteps=1_000_000, num_minibatches=4, hidden_sizes=(64, 64),
        normalize_obs=True, normalize_reward=True,
    )
    return _config(static, RunConfig(num_seeds=2), lr=3e-4, ent_coef=0.0)


VARIANTS = {
    "cartpole": lambda: _config(ppo.PPOConfig()),
    "breakout": lambda: _minatar("Breakout-MinAtar"),
    "spaceinvaders": lambda: _minatar("SpaceInvaders-MinAtar"),
    "asterix": lambda: _minatar("Asterix-MinAtar"),
    "freeway": lambda: _minatar("Freeway-MinAtar"),
    **{name: functools.partial(_brax, name) for name in BRAX_PPO},
    "inverted_pendulum_small": _inverted_pendulum_small,
}


def get_config(variant: str = "cartpole"):
    return variant_config(VARIANTS, variant, "ppo")


