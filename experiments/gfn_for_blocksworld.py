"""Flow of Reasoning on BlocksWorld: FoR (log-partition-variance TB, replay, local search), plain TB,
PPO and REINFORCE on the same small policy (`for_no_replay`: FoR without buffer and local search).

    python experiments/gfn_for_blocksworld.py --config=experiments/configs/gfn_for_blocksworld.py:default

Trains on `num_train` problems of one plan-length split (4 blocks), evaluates `n_samples` on-policy
plans per problem on the training problems and on `num_test` held-out problems of the same split:
success rate per sample, problems solved at least once (FoR's BlocksWorld success metric), the
number of DISTINCT correct plans and the fraction of all correct plans found (exact count by
`count_solutions`). Seeds run as one `vmap`. Writes `<workdir>/results.jsonl` and `summary.json`.
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

from lfx.gfn.blocksworld import (
    count_solutions,
    make_blocksworld,
    make_problems,
    problems_to_objs,
)
from lfx.gfn.flow_of_reasoning import make_reasoning_train, method_setup

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "gfn_for_blocksworld.py:default")
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/gfn_for_blocksworld", "Output folder.")


def scores(train, key, params, objs, problems, limit_slack, n_samples):
    succ, distinct = train.evaluate(key, params, objs, n_samples)
    total = np.asarray([count_solutions(p["init"], p["goal"], p["length"] + limit_slack) for p in problems])
    return {"success": float(succ.mean()), "solved_any": float((distinct > 0).mean()),
            "distinct": float(distinct.mean()), "found_fraction": float((distinct / total).mean()),
            "distinct_when_solved": float(distinct[distinct > 0].mean()) if (distinct > 0).any() else 0.0}


def main(_):
    c = _CONFIG.value
    if c.plan_length + c.slack > c.max_limit:
        raise ValueError(f"plan_length + slack = {c.plan_length + c.slack} exceeds max_limit={c.max_limit}.")
    os.makedirs(_WORKDIR.value, exist_ok=True)
    env, ep = make_blocksworld(c.num_blocks, c.max_limit)
    train_p = make_problems(c.problem_seed, c.num_blocks, c.plan_length, c.num_train)
    test_p = make_problems(c.problem_seed + 1, c.num_blocks, c.plan_length, c.num_test, exclude=train_p)
    train_o = problems_to_objs(train_p, c.max_limit, c.slack)
    test_o = problems_to_objs(test_p, c.max_limit, c.slack)
    rows = []
    with open(os.path.join(_WORKDIR.value, "results.jsonl"), "w") as f:
        for method in c.methods:
            cfg, hp = method_setup(c, method)
            train = make_reasoning_train(cfg, env, ep, train_o)
            t0 = time.time()
            keys = jax.vmap(jax.random.key)(np.arange(c.seeds))
            params, metrics = jax.block_until_ready(jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, hp))
            secs = time.time() - t0
            for seed in range(c.seeds):
                p = jax.tree.map(lambda x, s=seed: x[s], params)
                row = {"method": method, "seed": seed, "train_seconds_all_seeds": round(secs, 1),
                       "last100_train_success": float(np.asarray(metrics["train/success"][seed, -100:]).mean())}
                for split, objs, probs, k in (("train", train_o, train_p, 1000), ("test", test_o, test_p, 2000)):
                    s = scores(train, jax.random.key(k + seed), p, objs, probs, c.slack, c.n_samples)
                    row.update({f"{split}_{name}": v for name, v in s.items()})
                rows.append(row)
                f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    summary = {}
    for method in c.methods:
        r = [x for x in rows if x["method"] == method]
        summary[method] = {k: [float(np.mean([x[k] for x in r])), float(np.std([x[k] for x in r]))]
                           for k in r[0] if k not in ("method", "seed")}
    summary["num_correct_plans"] = {
        "train": [count_solutions(p["init"], p["goal"], p["length"] + c.slack) for p in train_p],
        "test": [count_solutions(p["init"], p["goal"], p["length"] + c.slack) for p in test_p]}
    summary["config"] = c.to_dict()
    with open(os.path.join(_WORKDIR.value, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps({m: summary[m] for m in c.methods}, indent=1))


if __name__ == "__main__":
    app.run(main)
