"""Compare GFlowNet losses (TB, DB, SubTB, FM, log-partition-variance TB) on hypergrid.

    python experiments/gfn_hypergrid.py --config=experiments/configs/gfn_hypergrid.py:quick
    python experiments/gfn_hypergrid.py --config=experiments/configs/gfn_hypergrid.py:hard \
        --config.seeds=5 --workdir=runs/gfn_hypergrid_hard

Every `eval_every` iterations the sampler's EXACT terminal distribution (DP over the enumerated
DAG) is compared with R(x)/Z: total variation (half-sum), JSD, |log Z - log Z_true|. Writes
`<workdir>/metrics.jsonl` (one line per loss, seed and evaluation), `summary.json` (final values,
mean and std over seeds) and `tv_curves.png`.
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

from lfx.gfn.train import GFNConfig, GFNHParams, make_train  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "gfn_hypergrid.py:quick")
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/gfn_hypergrid", "Output folder.")


def main(_):
    c = _CONFIG.value
    os.makedirs(_WORKDIR.value, exist_ok=True)
    hp = GFNHParams(lr=c.lr, logz_lr=c.logz_lr, epsilon=c.epsilon, temperature=c.temperature,
                    subtb_lambda=c.subtb_lambda)
    curves, summary = {}, {}
    with open(os.path.join(_WORKDIR.value, "metrics.jsonl"), "w") as f:
        for loss in c.losses.split(","):
            cfg = GFNConfig(
                env="hypergrid",
                env_kwargs=(("dim", c.dim), ("height", c.height), ("r0", c.r0), ("r1", c.r1), ("r2", c.r2)),
                loss=loss, batch_size=c.batch_size, num_iterations=c.num_iterations,
                hidden=tuple(c.hidden), learned_pb=c.learned_pb and loss != "fm",
                replay_batch=0 if loss == "fm" else c.replay_batch, eval_every=c.eval_every,
                rollout=c.rollout,
            )
            train = jax.jit(make_train(cfg))
            finals = []
            for seed in range(c.seeds):
                t0 = time.time()
                _, m = train(jax.random.key(seed), hp)
                m = jax.tree.map(np.asarray, m)
                steps = np.nonzero(~np.isnan(m["eval/tv"]))[0]
                for s in steps:
                    f.write(json.dumps({
                        "loss": loss, "seed": seed, "step": int(s), "tv": float(m["eval/tv"][s]),
                        "jsd": float(m["eval/jsd"][s]), "logz_err": float(m["eval/logz_err"][s]),
                        "modes_found": int(m["train/modes_found"][s]),
                    }) + "\n")
                curves.setdefault(loss, []).append((steps, m["eval/tv"][steps]))
                finals.append([m["eval/tv"][-1], m["eval/jsd"][-1], m["eval/logz_err"][-1],
                               m["train/modes_found"][-1]])
                print(f"{loss} seed {seed}: TV {finals[-1][0]:.4f} JSD {finals[-1][1]:.5f} "
                      f"|dlogZ| {finals[-1][2]:.4f} modes {int(finals[-1][3])} ({time.time() - t0:.0f}s)",
                      flush=True)
            a = np.asarray(finals, np.float64)
            summary[loss] = {k: [float(a[:, i].mean()), float(a[:, i].std())]
                             for i, k in enumerate(["tv", "jsd", "logz_err", "modes_found"])}
    summary["config"] = c.to_dict()
    with open(os.path.join(_WORKDIR.value, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (loss, runs) in enumerate(curves.items()):
        tv = np.stack([r[1] for r in runs])
        ax.semilogy(runs[0][0], tv.mean(0), label=loss, color=f"C{i}")
        ax.fill_between(runs[0][0], tv.min(0), tv.max(0), color=f"C{i}", alpha=0.2)
    ax.set_xlabel("iteration")
    ax.set_ylabel("exact TV (half-sum)")
    ax.set_title(f"hypergrid {c.dim}x{c.height}, R0={c.r0}, {c.seeds} seeds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(_WORKDIR.value, "tv_curves.png"), dpi=120)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=1))


if __name__ == "__main__":
    app.run(main)
