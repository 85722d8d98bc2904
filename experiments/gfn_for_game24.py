"""Flow of Reasoning on Game24: FoR, plain TB, PPO and REINFORCE on the same small policy.

    python experiments/gfn_for_game24.py --config=experiments/configs/gfn_for_game24.py:default
    python experiments/gfn_for_game24.py --config=experiments/configs/gfn_for_game24.py:for_full
    python experiments/gfn_for_game24.py --workdir=runs/gfn_for_game24/default --resume  # continue

Trains on `num_train` solvable puzzles, evaluates `n_samples` on-policy samples per puzzle on the
training puzzles and on `num_test` held-out puzzles: success rate per sample, puzzles solved at
least once, the number of DISTINCT correct operation sequences, and the fraction of all correct
sequences found (exact count by `solutions_bruteforce`). `default` trains the seeds one after
another, `for_full` runs them as one `vmap` (`vmap_seeds`). Each method trains as a harness run in
`<workdir>/<method>/` (checkpoints, exact `--resume`); each (method, seed) evaluation is a cell of
`<workdir>/results.jsonl`. Writes `summary.json` (mean and std over seeds).

Rewards (100 / 0.001) and local search (`for_local_search="best"`) follow FoR's public code; lfx's
first version, behind the results documented before 2026-12: `--config.failure_reward=0.01
--config.for_local_search=every`.
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np
from absl import flags, logging

from lfx.experiment import CellLog, ConfigError, WorkdirError, cli, from_configdict
from lfx.gfn.experiment import as_dict, sub_runs_have_checkpoints
from lfx.gfn.for_experiment import FoRComparison, Game24Problems, train_method
from lfx.gfn.for_game24 import make_game24_train, make_puzzles
from lfx.gfn.for_train import method_setup
from lfx.gfn.game24 import solutions_bruteforce

FLAGS = cli.define_flags("gfn_for_game24.py:default")
flags.DEFINE_integer("stop_after", None, "Testing hook: stop once this many iterations of the run "
                     "being trained are done, as if it had been killed.")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    config = cli.get_config()
    try:
        problems, c = from_configdict(config, Game24Problems, FoRComparison)
        problems.validate()
        c.validate_methods()
        fingerprint = {"problems": as_dict(problems), "comparison": as_dict(c)}
        wd = cli.open_workdir("gfn_for_game24", fingerprint, has_checkpoints=lambda p: (
            sub_runs_have_checkpoints(p) or CellLog.has_cells(p)))
    except (ConfigError, WorkdirError) as err:
        sys.exit(f"error: {err}")
    train_p = make_puzzles(problems.puzzle_seed, problems.num_train)
    test_p = make_puzzles(problems.puzzle_seed + 1, problems.num_test, exclude=[tuple(p) for p in train_p])
    total = {"train": np.asarray([len(solutions_bruteforce(tuple(p))) for p in train_p]),
             "test": np.asarray([len(solutions_bruteforce(tuple(p))) for p in test_p])}
    with wd:
        cells = CellLog(wd)
        rows = []
        for method in c.methods:
            cfg, hp = method_setup(c, method)
            recipe = make_game24_train(cfg, train_p, failure_reward=problems.failure_reward)
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
                for split, puzzles, k in (("train", train_p, 1000), ("test", test_p, 2000)):
                    s, d = recipe.evaluate(jax.random.key(k + seed), params[seed], puzzles, c.n_samples)
                    row.update({f"{split}_success": float(s.mean()), f"{split}_distinct": float(d.mean()),
                                f"{split}_solved_any": float((d > 0).mean()),
                                f"{split}_found": float((d / total[split]).mean())})
                print(json.dumps(row), flush=True)
                return row

            rows += cells.run([(i, lambda s=s: evaluate(s)) for s, i in enumerate(ids)],
                              progress=False)
        summary = {}
        for method in c.methods:
            r = [x for x in rows if x["method"] == method]
            summary[method] = {k: [float(np.mean([x[k] for x in r])), float(np.std([x[k] for x in r]))]
                               for k in r[0] if k not in ("method", "seed", "cell")}
        summary["train_puzzles"] = train_p.tolist()
        summary["test_puzzles"] = test_p.tolist()
        summary["num_correct_sequences"] = {k: v.tolist() for k, v in total.items()}
        summary["config"] = fingerprint
        wd.write_json("summary.json", summary)
    print(json.dumps({m: summary[m] for m in c.methods}, indent=1))


if __name__ == "__main__":
    cli.run(main)
