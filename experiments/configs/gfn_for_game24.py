"""Config for experiments/gfn_for_game24.py (Flow of Reasoning on Game24).

Variants: `default` = the first run (plain TB vs REINFORCE, seeds trained one after another; its
documented numbers come from this variant); `for_full` = the BlocksWorld method set on the same
puzzles, network and budget: FoR (log-partition-variance TB, 4 samples per puzzle, per-puzzle
replay of distinct solutions, local search, target R^2), FoR without buffer / local search, plain
TB, PPO and REINFORCE, seeds as one `vmap`.
"""

import ml_collections


def get_config(variant: str = "default"):
    c = ml_collections.ConfigDict()
    c.num_train, c.num_test = 15, 20  # the paper trains from about 15 examples
    c.puzzle_seed = 0
    c.seeds = 3
    c.methods = ("tb", "reinforce")
    c.vmap_seeds = False
    c.batch_size = 64
    c.num_iterations = 1500
    c.hidden = (128, 128)
    c.lr, c.epsilon, c.baseline_decay = 1e-3, 0.05, 0.95
    c.n_samples = 64
    # FoR (as experiments/configs/gfn_for_blocksworld.py)
    c.for_samples_per_problem = 4
    c.for_replay_capacity, c.for_replay_per_problem = 64, 4
    c.for_reward_beta = 2.0
    # PPO on the same network
    c.ppo_epochs, c.ppo_minibatches, c.clip_eps, c.vf_coef, c.ent_coef = 4, 4, 0.2, 0.5, 0.0
    if variant == "for_full":
        c.methods = ("for", "for_no_replay", "tb", "ppo", "reinforce")
        c.vmap_seeds = True
    elif variant != "default":
        raise ValueError(f"Unknown variant {variant!r}: use default or for_full.")
    return c
