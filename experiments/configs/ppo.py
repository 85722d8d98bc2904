"""ml_collections configs for experiments/ppo.py: `--config=experiments/configs/ppo.py:<variant>`.

Variants: cartpole (PureJaxRL's defaults, the default), breakout, spaceinvaders (MinAtar, PureJaxRL's
MinAtar settings), inverted_pendulum and hopper (brax, needs the extra).
"""

import ml_collections


def _base() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    # Static PPOConfig fields.
    c.env_name = "CartPole-v1"
    c.env_kwargs = ml_collections.ConfigDict()
    c.num_envs = 4
    c.num_steps = 128
    c.total_timesteps = 500_000
    c.update_epochs = 4
    c.num_minibatches = 4
    c.network = "mlp"
    c.hidden_sizes = (64, 64)
    c.activation = "tanh"
    c.anneal_lr = True
    c.normalize_obs = False
    c.normalize_reward = False
    # Traced HParams (a --sweep over any of these is one vmapped call).
    c.hparams = ml_collections.ConfigDict(
        dict(
            lr=2.5e-4,
            gamma=0.99,
            gae_lambda=0.95,
            clip_eps=0.2,
            ent_coef=0.01,
            vf_coef=0.5,
            max_grad_norm=0.5,
        )
    )
    # Run settings.
    c.num_seeds = 8
    c.seed = 0
    c.chunk_size = 10  # updates per jitted call (progress / checkpoint granularity)
    c.checkpoint_every = 50  # updates; 0 = only at the end
    return c


def get_config(variant: str = "cartpole") -> ml_collections.ConfigDict:
    c = _base()
    if variant == "cartpole":
        pass
    elif variant in ("breakout", "spaceinvaders", "asterix", "freeway"):
        c.env_name = {
            "breakout": "Breakout-MinAtar",
            "spaceinvaders": "SpaceInvaders-MinAtar",
            "asterix": "Asterix-MinAtar",
            "freeway": "Freeway-MinAtar",
        }[variant]
        c.num_envs = 64
        c.total_timesteps = 10_000_000
        c.num_minibatches = 8
        c.activation = "relu"
        # PureJaxRL's MinAtar settings: a 64-64 ReLU MLP over the flattened grid
        # (network="minatar_conv" selects the small conv torso instead).
        c.hparams.lr = 5e-3
        c.num_seeds = 4
        c.chunk_size = 20
    elif variant in ("inverted_pendulum", "hopper"):
        c.env_name = f"brax/{variant}"
        c.env_kwargs = ml_collections.ConfigDict({"backend": "spring"})
        c.num_envs = 2048 if variant == "hopper" else 64
        c.num_steps = 10 if variant == "hopper" else 32
        c.total_timesteps = 50_000_000 if variant == "hopper" else 1_000_000
        c.num_minibatches = 32 if variant == "hopper" else 4
        c.hidden_sizes = (256, 256) if variant == "hopper" else (64, 64)
        c.normalize_obs = True
        c.normalize_reward = True
        c.hparams.lr = 3e-4
        c.hparams.ent_coef = 0.0
        c.num_seeds = 2
    else:
        raise ValueError(
            f"Unknown variant {variant!r}; choose cartpole, breakout, spaceinvaders, asterix, "
            "freeway, inverted_pendulum or hopper."
        )
    return c
