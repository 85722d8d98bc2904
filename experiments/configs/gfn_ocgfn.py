"""Configs for experiments/gfn_ocgfn.py (OC-GFN reward-free pre-training, success rate).

Pre-training variants: `hypergrid` (2x8, 64 outcomes), `bitseq` (n 8, k 2: 256 outcomes),
`hypergrid4x8`. Adaptation variants (`mode = "adapt"`): `adapt_hypergrid` (4x8: 4096 outcomes, standard
reward R0 1e-3, R1 0.5, R2 2: 16 mode states) and `adapt_bitseq` (n 10, k 2: 1024 outcomes, 8 random
modes, beta 10). Both pre-train one OC-GFN (10000 iterations, seed `pretrain_seed`) unless
`pretrained_path` points to a saved one, then adapt with `seeds` seeds against TB from scratch.
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
    c.mode = "pretrain"
    if variant.startswith("adapt_"):
        c.mode = "adapt"
        c.num_iterations = 10000
        c.pretrain_seed = 0
        c.pretrained_path = ""
        c.exact_eval = True
        c.adapt = ml_collections.ConfigDict({
            "batch_size": 16, "num_iterations": 1000, "num_outcomes": 4, "lr": 1e-3, "logz_lr": 0.1, "epsilon": 0.05,
            "outcome_epsilon": 0.1, "eval_every": 100,
        })
        variant = variant[len("adapt_"):]
        if variant == "hypergrid":
            c.env_kwargs = {"dim": 4, "height": 8, "r0": 1e-3}
        elif variant == "bitseq":
            c.env, c.env_kwargs = "bitseq", {"n": 10, "k": 2, "num_modes": 8, "beta": 10.0}
        else:
            raise ValueError(f"Unknown variant adapt_{variant!r}: use adapt_hypergrid or adapt_bitseq.")
    elif variant == "bitseq":
        c.env, c.env_kwargs = "bitseq", {"n": 8, "k": 2}
    elif variant == "hypergrid4x8":
        c.env_kwargs = {"dim": 4, "height": 8}
        c.num_iterations = 6000
        c.hidden = (256, 256)
    elif variant != "hypergrid":
        raise ValueError(f"Unknown variant {variant!r}: use hypergrid, bitseq or hypergrid4x8.")
    return c
