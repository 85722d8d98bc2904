"""ml_collections configs for experiments/eval_objective.py (`--config=...meta_eval.py:<variant>`).

Variants:
  front (default; the README's main job): the shipped TA-LPO and LPO against PPO on CartPole-v1 at
    lifetimes x0.5, x1, x2 of the meta-training lifetime (5e4 steps), 8 seeds.
  cartpole_cpu: the shipped CartPole CPU-scale TA-LPO and LPO against PPO, lifetimes x0.25..x4 of the
    meta-training lifetime (5e4 steps) on CartPole-v1, and x1 on held-out Acrobot-v1; 8 seeds.
  brax_heldout: the shipped objectives and PPO on held-out brax/inverted_pendulum (spring backend)
    only, lifetimes x1, x0.5, x2 of 2.6e5 steps with brax-style PPO settings (see `env_overrides`),
    8 seeds; <= 20 min on 2 CPU cores. Needs the brax extra.
  quick: 2 lifetimes, 2 seeds (smoke).

`env_overrides` maps an environment to the PPO settings that differ from the CartPole ones above:
any of OVERRIDABLE (PPOConfig fields, `base_timesteps` = that environment's x1 lifetime) and
`hparams` (a dict of `lfx.rl.ppo.HParams` fields).
"""

import ml_collections

OVERRIDABLE = ("base_timesteps", "num_envs", "num_steps", "update_epochs", "num_minibatches",
               "hidden_sizes", "activation", "anneal_lr", "normalize_obs", "normalize_reward",
               "reward_norm_gamma", "env_kwargs", "hparams")

# experiments/configs/ppo.py:inverted_pendulum (docs/RESULTS.md's brax row: 64 envs x 32 steps
# learns to ~100 by 1e5 steps and ends near 70 after 1e6): spring backend, observation and reward
# normalisation, lr 3e-4, no entropy bonus. x1 = 128 updates of 2048 steps.
INVERTED_PENDULUM = {
    "base_timesteps": 128 * 64 * 32, "env_kwargs": {"backend": "spring"}, "num_envs": 64,
    "num_steps": 32, "num_minibatches": 4, "hidden_sizes": (64, 64), "normalize_obs": True,
    "normalize_reward": True, "hparams": {"lr": 3e-4, "ent_coef": 0.0},
}


def get_config(variant: str = "front") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.objectives = ("ppo", "lpo/cartpole_cpu", "ta_lpo/cartpole_cpu")
    c.meta_env = "CartPole-v1"
    c.base_timesteps = 50_000
    c.lifetime_multipliers = (1.0, 0.25, 4.0, 0.5, 2.0)  # most informative first
    c.heldout_envs = ("Acrobot-v1",)
    c.heldout_multipliers = (1.0,)
    c.num_envs = 4
    c.num_steps = 128
    c.update_epochs = 4
    c.num_minibatches = 4
    c.hidden_sizes = (64, 64)
    c.activation = "tanh"
    c.num_seeds = 8
    c.seed = 1000  # evaluation seeds differ from the meta-training seeds
    c.window_fraction = 0.1
    c.progress_chunks = 10  # the progress bar moves this many times per cell
    c.env_overrides = ml_collections.ConfigDict()  # env -> settings that differ (module docstring)
    if variant == "front":
        c.lifetime_multipliers = (1.0, 0.5, 2.0)
        c.heldout_envs = ()
    elif variant == "brax_heldout":
        c.lifetime_multipliers = ()  # no CartPole cell
        c.heldout_envs = ("brax/inverted_pendulum",)
        c.heldout_multipliers = (1.0, 0.5, 2.0)
        c.env_overrides = ml_collections.ConfigDict({"brax/inverted_pendulum": INVERTED_PENDULUM})
    elif variant == "quick":
        c.lifetime_multipliers = (0.25, 1.0)
        c.heldout_multipliers = (0.25,)
        c.num_seeds = 2
    elif variant != "cartpole_cpu":
        raise ValueError(f"Unknown variant {variant!r}.")
    return c
