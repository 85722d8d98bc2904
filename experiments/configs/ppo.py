"""Configs for experiments/ppo.py: `--config=experiments/configs/ppo.py:<variant>`.

Derived from the dataclasses (`lfx.rl.ppo.PPOConfig`, `lfx.experiment.RunConfig` at the top level,
`lfx.rl.ppo.HParams` under `hparams`), so every field is settable as `--config.<field>=`.

Variants: cartpole (PureJaxRL's defaults, the default), breakout, spaceinvaders, asterix, freeway
(MinAtar, PureJaxRL's MinAtar settings), inverted_pendulum and hopper (brax, needs the extra).
"""


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


def _brax(name: str):
    hopper = name == "hopper"
    static = ppo.PPOConfig(
        env_name=f"brax/{name}", env_kwargs=(("backend", "spring"),),
        num_envs=2048 if hopper else 64, num_steps=10 if hopper else 32,
        total_timesteps=50_000_000 if hopper else 1_000_000,
        num_minibatches=32 if hopper else 4, hidden_sizes=(256, 256) if hopper else (64, 64),
        normalize_obs=True, normalize_reward=True,
    )
    return _config(static, RunConfig(num_seeds=2), lr=3e-4, ent_coef=0.0)


VARIANTS = {
    "cartpole": lambda: _config(ppo.PPOConfig()),
    "breakout": lambda: _minatar("Breakout-MinAtar"),
    "spaceinvaders": lambda: _minatar("SpaceInvaders-MinAtar"),
    "asterix": lambda: _minatar("Asterix-MinAtar"),
    "freeway": lambda: _minatar("Freeway-MinAtar"),
    "inverted_pendulum": lambda: _brax("inverted_pendulum"),
    "hopper": lambda: _brax("hopper"),
}


def get_config(variant: str = "cartpole"):
    return variant_config(VARIANTS, variant, "ppo")


