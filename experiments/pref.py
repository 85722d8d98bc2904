"""Tune a language model on preference pairs (DPO and its family), seeds and a beta grid in one call.

    python experiments/pref_task.py --workdir=datasets/pref/lexicon      # once: task (a)
    python experiments/pref.py                                          # DPO, 5 seeds
    python experiments/pref.py --config.loss_type=ipo --sweep="beta=0.1,0.5,1"
    python experiments/pref.py --config.objective=simpo --config.hparams.beta=2
    python experiments/pref.py --config.eval_reward=intensity           # a held-out reward
    python experiments/pref.py --workdir=runs/pref_dpo --resume         # continue a killed run

Trains `lfx.pref.recipe` through the shared harness (`lfx.pref.main`: progress bar, checkpoints,
exact resume, NaN stop, a workdir that is never overwritten) and writes `metrics.jsonl|csv`,
`summary.json`, `learning_curve.png` and `frontier.png` (reward against KL at every evaluation).
"""

from __future__ import annotations

from lfx.experiment import cli
from lfx.pref import recipe
from lfx.pref.main import main_for

FLAGS = cli.define_flags("pref.py:dpo", sweep=True)


def main(argv):
    del argv
    main_for(recipe, "pref", FLAGS)


if __name__ == "__main__":
    cli.run(main)
