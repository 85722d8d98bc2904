"""Configs for experiments/gfn_hypergrid.py (GFlowNet losses compared on hypergrid).

Variants: `quick` (2x8, R0 0.1: minutes on 2 CPU cores), `hard` (2x8, R0 1e-3), `grid4x8`
(4x8, R0 1e-3; the exact evaluation enumerates 4,096 states).
"""

import ml_collections


def get_config(variant: str = "quick"):
    c = ml_collections.ConfigDict()
    c.dim, c.height, c.r0, c.r1, c.r2 = 2, 8, 0.1, 0.5, 2.0
    c.losses = "tb,db,subtb,fm,logz_var"
    c.seeds = 3
    c.batch_size = 16
    c.num_iterations = 2000
    c.eval_every = 100
    c.hidden = (256, 256)
    c.learned_pb = False
    c.replay_batch = 0
    # "padded" is the rollout the results in docs/results/gfn.md were recorded with; "auto" runs TB and
    # log-partition variance on the packed path (lfx.gfn.train.resolve_rollout).
    c.rollout = "padded"
    c.lr, c.logz_lr, c.epsilon, c.temperature, c.subtb_lambda = 1e-3, 0.1, 0.0, 1.0, 0.9
    if variant == "hard":
        c.r0 = 1e-3
        c.num_iterations = 4000
        c.epsilon = 0.05
    elif variant == "grid4x8":
        c.dim, c.r0 = 4, 1e-3
        c.num_iterations = 4000
        c.eval_every = 250
        c.epsilon = 0.05
    elif variant != "quick":
        raise ValueError(f"Unknown variant {variant!r}: use quick, hard or grid4x8.")
    return c
