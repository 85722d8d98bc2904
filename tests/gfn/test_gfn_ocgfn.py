"""OC-GFN: reward-free pre-training with hindsight relabelling reaches requested outcomes."""

import jax
import numpy as np

from lfx.gfn.hypergrid import make_hypergrid
from lfx.gfn.ocgfn import OCGFNConfig, OCGFNHParams, make_train


def test_ocgfn_conditional_sampling_reaches_outcome():
    # hypergrid 2x6 (36 outcomes), batch 32, MLP 64-64, 1200 iterations, seed 0; success is the
    # fraction of 512 on-policy conditional samples (epsilon 0) whose terminal object equals y.
    env, ep = make_hypergrid(2, 6)
    cfg = OCGFNConfig(batch_size=32, num_iterations=1200, hidden=(64, 64), eval_every=1199, eval_batch=512)
    pre = make_train(cfg, env, ep)
    _, m = jax.jit(pre.train)(jax.random.key(0), OCGFNHParams(lr=3e-3, epsilon=0.1))
    s = np.asarray(m["pretrain/success"])
    s = s[~np.isnan(s)]
    assert s[0] < 0.2  # untrained: a requested outcome is rarely reached
    assert s[-1] >= 0.95, s
