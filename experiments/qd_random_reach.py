"""How sparse is a task? The fraction of random policies (lfx's MLP initialiser) that end in each reward area.

    python experiments/qd_random_reach.py                                  # Curling, 3 x 5, 20000
    python experiments/qd_random_reach.py --config=experiments/configs/qd_random_reach.py:curling_16
    python experiments/qd_random_reach.py --config.env=HardMaze-sparse --config.hidden="(16,)"

Draws `num` genomes from `MLPPolicy.init` (what random search samples), rolls each out once and
prints, per reward area, the number and fraction that end inside it, and the fraction whose
descriptor moved at all from the first policy-independent reset value. With p the fraction for an
area, random search with a budget of B evaluations misses it with probability (1 - p)^B. Writes
`<workdir>/reach.json`.
"""

from __future__ import annotations

import json
import os

from lfx.experiment import ConfigError, cli, from_configdict
from lfx.qd.reach import ReachConfig, random_reach
from lfx.qd.task import make_task

FLAGS = cli.define_flags("qd_random_reach.py:curling")


def main(argv):
    del argv
    (c,) = from_configdict(cli.get_config(), ReachConfig)
    try:
        c.validate()
        task = make_task(c.env, hidden=tuple(c.hidden), image_size=0, **dict(c.env_kwargs))
    except (ValueError, TypeError) as err:
        raise ConfigError(str(err)) from None
    done = lambda path: os.path.exists(os.path.join(path, "reach.json"))
    wd = cli.open_workdir(f"qd_random_reach_{c.env}", c.__dict__, has_checkpoints=done)
    with wd:
        path = wd.file("reach.json")
        if wd.resuming:  # finished before: nothing to recompute
            with open(path) as f:
                r = json.load(f)
        else:
            r = random_reach(task, c)
            wd.write_json("reach.json", r)
    print(f"{c.env}, hidden {c.hidden}, genome {r['genome_dim']}, {r['num']} random policies:")
    print(f"  descriptor moved from its start value: {r['moved']:.3f}")
    for a in r["areas"]:
        print(f"  reward area {a['area']}: {a['count']} ({a['fraction']:.4%}); random search misses "
              f"it in {c.budget} evaluations with probability {a['miss_probability']:.3g}")
    print(f"Wrote {path}")


if __name__ == "__main__":
    cli.run(main)
