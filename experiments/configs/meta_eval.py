"""ml_collections configs for experiments/eval_objective.py (`--config=...meta_eval.py:<variant>`).

Variants:
  front (default; the README's main job): the shipped TA-LPO and LPO against PPO on CartPole-v1 at
    lifetimes x0.5, x1, x2 of the meta-training lifetime (5e4 steps), 8 seeds.
  cartpole_cpu: the shipped CartPole CPU-scale TA-LPO and LPO against PPO, lifetimes x0.25..x4 of the
    meta-training lifetime (5e4 steps) on CartPole-v1, and x1 on held-out Acrobot-v1; 8 seeds.
  quick: 2 lifetimes, 2 seeds (smoke).
"""

import ml_collections


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
    if variant == "front":
        c.lifetime_multipliers = (1.0, 0.5, 2.0)
        c.heldout_envs = ()
    elif variant == "quick":
        c.lifetime_multipliers = (0.25, 1.0)
        c.heldout_multipliers = (0.25,)
        c.num_seeds = 2
    elif variant != "cartpole_cpu":
        raise ValueError(f"Unknown variant {variant!r}.")
    return c
