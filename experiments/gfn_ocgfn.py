"""OC-GFN reward-free pre-training: does the conditional sampler reach requested outcomes?

    python experiments/gfn_ocgfn.py --config=experiments/configs/gfn_ocgfn.py:hypergrid
    python experiments/gfn_ocgfn.py --config=experiments/configs/gfn_ocgfn.py:bitseq

Success rate = fraction of `eval_batch` on-policy conditional samples (epsilon 0) whose terminal
object equals the requested outcome y (drawn uniformly). Writes `<workdir>/metrics.jsonl`,
`summary.json` (final success, mean and std over seeds) and `success.png`.
(Adaptation to a downstream reward with the frozen model is not implemented yet.)
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from lfx.gfn.ocgfn import OCGFNConfig, OCGFNHParams, make_pretrain  # noqa: E402
from lfx.gfn.train import GFN_ENVS  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "gfn_ocgfn.py:hypergrid")
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/gfn_ocgfn", "Output folder.")


def main(_):
    c = _CONFIG.value
    os.makedirs(_WORKDIR.value, exist_ok=True)
    env, ep = GFN_ENVS[c.env](**dict(c.env_kwargs))
    cfg = OCGFNConfig(batch_size=c.batch_size, num_iterations=c.num_iterations, hidden=tuple(c.hidden),
                      eval_every=c.eval_every, eval_batch=c.eval_batch)
    pre = jax.jit(make_pretrain(cfg, env, ep))
    hp = OCGFNHParams(lr=c.lr, epsilon=c.epsilon, tb_coef=c.tb_coef)
    finals, curves = [], []
    with open(os.path.join(_WORKDIR.value, "metrics.jsonl"), "w") as f:
        for seed in range(c.first_seed, c.first_seed + c.seeds):
            t0 = time.time()
            _, m = pre(jax.random.key(seed), hp)
            s = np.asarray(m["pretrain/success"])
            steps = np.nonzero(~np.isnan(s))[0]
            for i in steps:
                f.write(json.dumps({"seed": seed, "step": int(i), "success": float(s[i]),
                                    "loss": float(m["pretrain/loss"][i])}) + "\n")
            finals.append(float(s[-1]))
            curves.append((steps, s[steps]))
            print(f"seed {seed}: success {finals[-1]:.3f} ({time.time() - t0:.0f}s)", flush=True)
    summary = {"env": env.name, "success_mean": float(np.mean(finals)), "success_std": float(np.std(finals)),
               "success_per_seed": finals, "config": c.to_dict()}
    with open(os.path.join(_WORKDIR.value, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for st, sv in curves:
        ax.plot(st, sv, alpha=0.7)
    ax.axhline(0.95, ls="--", c="k")
    ax.set_xlabel("pre-training iteration")
    ax.set_ylabel("success rate")
    ax.set_title(f"OC-GFN on {env.name}, {c.seeds} seeds")
    fig.tight_layout()
    fig.savefig(os.path.join(_WORKDIR.value, "success.png"), dpi=120)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}))


if __name__ == "__main__":
    app.run(main)
