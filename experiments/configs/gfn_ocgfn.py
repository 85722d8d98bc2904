"""Configs for experiments/gfn_ocgfn.py (OC-GFN reward-free pre-training, success rate).

Variants: `hypergrid` (2x8, 64 outcomes), `bitseq` (n 8, k 2: 256 outcomes), `hypergrid4x8`.
"""

import ml_collections


def get_config(variant: str = "hypergrid"):
    c = ml_collections.ConfigDict()
    c.env = "hypergrid"
    c.env_kwargs = {"dim": 2, "height": 8}
    c.seeds = 5
    c.first_seed = 0
    c.batch_size = 64
    c.num_iterations = 3000
    c.hidden = (128, 128)
    c.eval_every = 250
    c.eval_batch = 1024
    c.lr, c.epsilon, c.tb_coef = 1e-3, 0.1, 1.0
    if variant == "bitseq":
        c.env, c.env_kwargs = "bitseq", {"n": 8, "k": 2}
    elif variant == "hypergrid4x8":
        c.env_kwargs = {"dim": 4, "height": 8}
        c.num_iterations = 6000
        c.hidden = (256, 256)
    elif variant != "hypergrid":
        raise ValueError(f"Unknown variant {variant!r}: use hypergrid, bitseq or hypergrid4x8.")
    return c
