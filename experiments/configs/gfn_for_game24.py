"""Config for experiments/gfn_for_game24.py (Flow of Reasoning on Game24: TB vs REINFORCE)."""

import ml_collections


def get_config(variant: str = "default"):
    c = ml_collections.ConfigDict()
    c.num_train, c.num_test = 15, 20  # the paper trains from about 15 examples
    c.puzzle_seed = 0
    c.seeds = 3
    c.batch_size = 64
    c.num_iterations = 1500
    c.hidden = (128, 128)
    c.lr, c.epsilon, c.baseline_decay = 1e-3, 0.05, 0.95
    c.n_samples = 64
    if variant != "default":
        raise ValueError(f"Unknown variant {variant!r}: use default.")
    return c
