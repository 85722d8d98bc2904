"""ml_collections configs for experiments/meta_train.py: `--config=experiments/configs/meta_train.py:<variant>`.

Variants:
  ta_lpo_cartpole_cpu / lpo_cartpole_cpu: CPU scale (<= 30 min on 2 cores). CartPole-v1, 4 envs x
    128 steps, 5e4 steps per lifetime (97 updates), population 16 x 1 seed, PPO-initialised drift.
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

import ml_collections


def _base() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.drift = "ta_lpo_ppo_init"  # a key of lfx.meta.lpo.DRIFT_CONFIGS
    c.init_output_scale = 0.0  # 0: the objective starts at PPO (with ppo_init)
    # Inner loop (PPOConfig fields); envs x lifetimes are the meta-training tasks.
    c.env_names = ("CartPole-v1",)
    c.lifetime_multipliers = (1.0,)
    c.lifetime_sampling = "all"  # "all": every task every generation; "cycle": one per generation
    c.num_envs = 4
    c.num_steps = 128
    c.total_timesteps = 50_000
    c.update_epochs = 4
    c.num_minibatches = 4
    c.network = "mlp"
    c.hidden_sizes = (64, 64)
    c.activation = "tanh"
    c.hparams = ml_collections.ConfigDict(
        dict(lr=2.5e-4, gamma=0.99, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01, vf_coef=0.5,
             max_grad_norm=0.5)
    )
    # Fitness: mean return over the final window, normalised by a PPO table.
    c.return_table = ml_collections.ConfigDict({"CartPole-v1": 500.0})
    # Random-policy returns: fitness = (R - floor) / (table - floor); 0 where not listed.
    c.return_floor = ml_collections.ConfigDict({"Acrobot-v1": -500.0})
    c.num_seeds = 1
    c.window_fraction = 0.1
    # OpenAI-ES.
    c.population_size = 16
    c.num_generations = 60
    c.es_lr = 0.05
    c.es_lr_decay = 0.99
    c.sigma = 0.05
    c.sigma_decay = 0.99
    c.seed = 0
    c.checkpoint_every = 5
    c.max_minutes = 0.0  # stop cleanly (checkpointed) after this wall time; 0 = no limit
    c.pretrained_name = ""  # e.g. "ta_lpo/cartpole_cpu": also save into lfx/meta/pretrained
    return c


def get_config(variant: str = "ta_lpo_cartpole_cpu") -> ml_collections.ConfigDict:
    c = _base()
    if variant == "ta_lpo_cartpole_cpu":
        c.pretrained_name = "ta_lpo/cartpole_cpu"
    elif variant == "lpo_cartpole_cpu":
        c.drift = "lpo_ppo_init"
        c.pretrained_name = "lpo/cartpole_cpu"
    elif variant in ("ta_lpo_spaceinvaders", "lpo_spaceinvaders"):
        c.drift = "ta_lpo_ppo_init" if variant.startswith("ta") else "lpo_ppo_init"
        c.env_names = ("SpaceInvaders-MinAtar",)
        c.return_table = ml_collections.ConfigDict({"SpaceInvaders-MinAtar": 167.1})
        c.num_envs = 64
        c.total_timesteps = 10_000_000
        c.num_minibatches = 8
        c.network = "minatar_conv"
        c.activation = "relu"
        c.hparams.lr = 5e-3
        c.population_size = 64
        c.num_generations = 800
        c.es_lr = 0.03
        c.sigma = 0.03
    elif variant == "ta_lpo_multi_lifetime":
        c.drift = "ta_lpo_lifetime_ppo_init"
        c.lifetime_multipliers = (0.5, 1.0, 2.0)
        c.lifetime_sampling = "cycle"
    elif variant == "ta_lpo_multi_env_cpu":
        c.env_names = ("CartPole-v1", "Acrobot-v1")
        # PPO at this budget (5e4 steps, 8 seeds; docs/results/meta.md): CartPole 220, Acrobot -395.
        c.return_table = ml_collections.ConfigDict({"CartPole-v1": 220.0, "Acrobot-v1": -395.0})
    elif variant == "tiny":
        c.total_timesteps = 4 * 128 * 4
        c.population_size = 4
        c.num_generations = 2
    else:
        raise ValueError(f"Unknown variant {variant!r}.")
    return c
