"""Flow of Reasoning on BlocksWorld: FoR (log-partition-variance TB, replay, local search), plain TB,
PPO and REINFORCE on the same small policy (`for_no_replay`: FoR without buffer and local search).

    python experiments/gfn_for_blocksworld.py --config=experiments/configs/gfn_for_blocksworld.py:default
    python experiments/gfn_for_blocksworld.py --workdir=runs/gfn_for_blocksworld/default --resume

Trains on `num_train` problems of one plan-length split (4 blocks), evaluates `n_samples` on-policy
plans per problem on the training problems and on `num_test` held-out problems of the same split:
success rate per sample, problems solved at least once (FoR's BlocksWorld success metric), the
number of DISTINCT correct plans and the fraction of all correct plans found (exact count by
`count_solutions`). Seeds run as one `vmap`; each method trains as a harness run in
`<workdir>/<method>/` (checkpoints, exact `--resume`); each (method, seed) evaluation is a cell of
`<workdir>/results.jsonl`. Writes `summary.json` (mean and std over seeds).

Rewards (100 on success, else 10 x facts met / facts, plus the step limit) and local search
(`for_local_search="best"`) follow FoR's public code; lfx's first version, behind the results
documented before 2026-12: `--config.failure_reward=0.01 --config.step_reward=0
--config.for_local_search=every`.
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np
from absl import flags, logging

from lfx.experiment import CellLog, ConfigError, WorkdirError, cli, from_configdict
from lfx.gfn.blocksworld import count_solutions, make_blocksworld, make_problems, problems_to_objs
from lfx.gfn.experiment import as_dict, sub_runs_have_checkpoints
from lfx.gfn.for_experiment import BlocksworldProblems, FoRComparison, train_method
from lfx.gfn.for_train import make_train, method_setup

FLAGS = cli.define_flags("gfn_for_blocksworld.py:default")
flags.DEFINE_integer("stop_after", None, "Testing hook: stop once this many iterations of the run "
                     "being trained are done, as if it had been killed.")


def scores(recipe, key, params, objs, problems, limit_slack, n_samples):
    succ, distinct = recipe.evaluate(key, params, objs, n_samples)
    total = np.asarray([count_solutions(p["init"], p["goal"], p["length"] + limit_slack) for p in problems])
    return {"success": float(succ.mean()), "solved_any": float((distinct > 0).mean()),
            "distinct": float(distinct.mean()), "found_fraction": float((distinct / total).mean()),
            "distinct_when_solved": float(distinct[distinct > 0].mean()) if (distinct > 0).any() else 0.0}


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    config = cli.get_config()
    try:
        p, c = from_configdict(config, BlocksworldProblems, FoRComparison)
        p.validate()
        c.validate_methods()
        fingerprint = {"problems": as_dict(p), "comparison": as_dict(c)}
        wd = cli.open_workdir("gfn_for_blocksworld", fingerprint, has_checkpoints=lambda d: (
            sub_runs_have_checkpoints(d) or CellLog.has_cells(d)))
    except (ConfigError, WorkdirError) as err:
        sys.exit(f"error: {err}")
    env, ep = make_blocksworld(p.num_blocks, p.max_limit, failure_reward=p.failure_reward,
                               step_reward=p.step_reward)
    train_p = make_problems(p.problem_seed, p.num_blocks, p.plan_length, p.num_train)
    test_p = make_problems(p.problem_seed + 1, p.num_blocks, p.plan_length, p.num_test, exclude=train_p)
    train_o = problems_to_objs(train_p, p.max_limit, p.slack)
    test_o = problems_to_objs(test_p, p.max_limit, p.slack)
    with wd:
        cells = CellLog(wd)
        rows = []
        for method in c.methods:
            cfg, hp = method_setup(c, method)
            recipe = make_train(cfg, env, ep, train_o)
            ids = [f"{method}/seed_{s}" for s in range(c.seeds)]
            if all(cells.get(i) is not None for i in ids):
                rows += [cells.get(i) for i in ids]
                continue
            trained = train_method(recipe, hp, c, wd.file(method),
                                   {**fingerprint, "method": method}, resume=FLAGS.resume,
                                   progress=FLAGS.progress, stop_after=FLAGS.stop_after)
            if trained is None:
                print(f"Stopped during {method} (--stop_after); continue with --resume.", flush=True)
                return
            params, succ = trained

            def evaluate(seed, method=method, recipe=recipe, params=params, succ=succ):
                row = {"method": method, "seed": seed,
                       "last100_train_success": float(succ[seed, -100:].mean())}
                for split, objs, probs, k in (("train", train_o, train_p, 1000),
                                              ("test", test_o, test_p, 2000)):
                    s = scores(recipe, jax.random.key(k + seed), params[seed], objs, probs, p.slack,
                               c.n_samples)
                    row.update({f"{split}_{name}": v for name, v in s.items()})
                print(json.dumps(row), flush=True)
                return row

            rows += cells.run([(i, lambda s=s: evaluate(s)) for s, i in enumerate(ids)],
                              progress=False)
        summary = {}
        for method in c.methods:
            r = [x for x in rows if x["method"] == method]
            summary[method] = {k: [float(np.mean([x[k] for x in r])), float(np.std([x[k] for x in r]))]
                               for k in r[0] if k not in ("method", "seed", "cell")}
        summary["num_correct_plans"] = {
            "train": [count_solutions(q["init"], q["goal"], q["length"] + p.slack) for q in train_p],
            "test": [count_solutions(q["init"], q["goal"], q["length"] + p.slack) for q in test_p]}
        summary["config"] = fingerprint
        wd.write_json("summary.json", summary)
    print(json.dumps({m: summary[m] for m in c.methods}, indent=1))


if __name__ == "__main__":
    cli.run(main)
