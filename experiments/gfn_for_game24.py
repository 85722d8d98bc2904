"""Flow of Reasoning on Game24: FoR, plain TB, PPO and REINFORCE on the same small policy.

    python experiments/gfn_for_game24.py --config=experiments/configs/gfn_for_game24.py:default
    python experiments/gfn_for_game24.py --config=experiments/configs/gfn_for_game24.py:for_full

Trains on `num_train` solvable puzzles, evaluates `n_samples` on-policy samples per puzzle on the
training puzzles and on `num_test` held-out puzzles: success rate per sample, puzzles solved at
least once, the number of DISTINCT correct operation sequences, and the fraction of all correct
sequences found (exact count by `solutions_bruteforce`). `default` trains the seeds one after
another (the first run's path, kept so its numbers still come from its command); `for_full` runs
them as one `vmap`. Writes `<workdir>/results.jsonl` and `summary.json`.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from lfx.gfn.flow_of_reasoning import (
    make_for_train,
    make_puzzles,
    method_setup,
)
from lfx.gfn.game24 import solutions_bruteforce

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "gfn_for_game24.py:default")
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/gfn_for_game24", "Output folder.")


def train_seeds(c, train, hp):
    """[seeds] trained params (a list) and [seeds, num_iterations] training success; seconds."""
    t0 = time.time()
    if c.vmap_seeds:
        keys = jax.vmap(jax.random.key)(np.arange(c.seeds))
        params, m = jax.block_until_ready(jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, hp))
        out = [jax.tree.map(lambda x, s=s: x[s], params) for s in range(c.seeds)]
        return out, np.asarray(m["train/success"]), time.time() - t0
    jt = jax.jit(train)
    out, succ = [], []
    for seed in range(c.seeds):
        params, m = jax.block_until_ready(jt(jax.random.key(seed), hp))
        out.append(params)
        succ.append(np.asarray(m["train/success"]))
    return out, np.stack(succ), time.time() - t0


def main(_):
    c = _CONFIG.value
    for m in c.methods:
        method_setup(c, m)  # unknown names fail before any training
    os.makedirs(_WORKDIR.value, exist_ok=True)
    train_p = make_puzzles(c.puzzle_seed, c.num_train)
    test_p = make_puzzles(c.puzzle_seed + 1, c.num_test, exclude=[tuple(p) for p in train_p])
    total = {"train": np.asarray([len(solutions_bruteforce(tuple(p))) for p in train_p]),
             "test": np.asarray([len(solutions_bruteforce(tuple(p))) for p in test_p])}
    rows = []
    with open(os.path.join(_WORKDIR.value, "results.jsonl"), "w") as f:
        for method in c.methods:
            cfg, hp = method_setup(c, method)
            train = make_for_train(cfg, train_p)
            params, succ, secs = train_seeds(c, train, hp)
            for seed in range(c.seeds):
                row = {"method": method, "seed": seed, "train_seconds_all_seeds": round(secs, 1),
                       "last100_train_success": float(succ[seed, -100:].mean())}
                for split, puzzles, k in (("train", train_p, 1000), ("test", test_p, 2000)):
                    s, d = train.evaluate(jax.random.key(k + seed), params[seed], puzzles, c.n_samples)
                    row.update({f"{split}_success": float(s.mean()), f"{split}_distinct": float(d.mean()),
                                f"{split}_solved_any": float((d > 0).mean()),
                                f"{split}_found": float((d / total[split]).mean())})
                rows.append(row)
                f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    summary = {}
    for method in c.methods:
        r = [x for x in rows if x["method"] == method]
        summary[method] = {k: [float(np.mean([x[k] for x in r])), float(np.std([x[k] for x in r]))]
                           for k in r[0] if k not in ("method", "seed")}
    summary["train_puzzles"] = train_p.tolist()
    summary["test_puzzles"] = test_p.tolist()
    summary["num_correct_sequences"] = {k: v.tolist() for k, v in total.items()}
    summary["config"] = c.to_dict()
    with open(os.path.join(_WORKDIR.value, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps({m: summary[m] for m in c.methods}, indent=1))


if __name__ == "__main__":
    app.run(main)
