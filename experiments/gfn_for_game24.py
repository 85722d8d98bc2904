"""Flow of Reasoning on Game24: trajectory balance vs REINFORCE on the same small policy.

    python experiments/gfn_for_game24.py --config=experiments/configs/gfn_for_game24.py

Trains on `num_train` solvable puzzles, evaluates `n_samples` on-policy samples per puzzle on the
training puzzles and on `num_test` held-out puzzles: success rate and the number of DISTINCT correct
operation sequences. Writes `<workdir>/results.jsonl` and `summary.json`.
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

from lfx.gfn.flow_of_reasoning import FoRConfig, FoRHParams, make_for_train, make_puzzles  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "gfn_for_game24.py:default")
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/gfn_for_game24", "Output folder.")


def main(_):
    c = _CONFIG.value
    os.makedirs(_WORKDIR.value, exist_ok=True)
    train_p = make_puzzles(c.puzzle_seed, c.num_train)
    test_p = make_puzzles(c.puzzle_seed + 1, c.num_test, exclude=[tuple(p) for p in train_p])
    hp = FoRHParams(lr=c.lr, epsilon=c.epsilon, baseline_decay=c.baseline_decay)
    rows = []
    with open(os.path.join(_WORKDIR.value, "results.jsonl"), "w") as f:
        for method in ("tb", "reinforce"):
            train = make_for_train(FoRConfig(method=method, batch_size=c.batch_size,
                                             num_iterations=c.num_iterations, hidden=tuple(c.hidden)), train_p)
            jt = jax.jit(train)
            for seed in range(c.seeds):
                t0 = time.time()
                params, _ = jt(jax.random.key(seed), hp)
                s_tr, d_tr = train.evaluate(jax.random.key(1000 + seed), params, train_p, c.n_samples)
                s_te, d_te = train.evaluate(jax.random.key(2000 + seed), params, test_p, c.n_samples)
                row = {"method": method, "seed": seed,
                       "train_success": float(s_tr.mean()), "train_distinct": float(d_tr.mean()),
                       "train_solved_any": float((d_tr > 0).mean()),
                       "test_success": float(s_te.mean()), "test_distinct": float(d_te.mean()),
                       "test_solved_any": float((d_te > 0).mean())}
                rows.append(row)
                f.write(json.dumps(row) + "\n")
                print(json.dumps(row), f"({time.time() - t0:.0f}s)", flush=True)
    summary = {}
    for method in ("tb", "reinforce"):
        r = [x for x in rows if x["method"] == method]
        summary[method] = {k: [float(np.mean([x[k] for x in r])), float(np.std([x[k] for x in r]))]
                           for k in r[0] if k not in ("method", "seed")}
    summary["train_puzzles"] = train_p.tolist()
    summary["test_puzzles"] = test_p.tolist()
    with open(os.path.join(_WORKDIR.value, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps({k: summary[k] for k in ("tb", "reinforce")}, indent=1))


if __name__ == "__main__":
    app.run(main)
