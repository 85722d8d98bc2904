"""Train SAC over several seeds (and optionally a hyperparameter grid) in one vmapped call.

    python experiments/sac.py                                   # gymnax Pendulum-v1, 5 seeds
    python experiments/sac.py --config=experiments/configs/sac.py:hopper      # brax's settings
    python experiments/sac.py --sweep="lr=3e-4,1e-3;tau=0.005,0.02"
    python experiments/sac.py --workdir=runs/sac_pendulum --resume   # continue a killed run

Writes `<workdir>/metrics.jsonl|csv`, `summary.json` (final training and greedy returns per
setting), `learning_curve.png` and orbax checkpoints (the body is `lfx/rl/main.py`, shared by every
RL recipe script).
"""

from __future__ import annotations

from lfx.experiment import cli
from lfx.rl import sac
from lfx.rl.main import main_for

FLAGS = cli.define_flags("sac.py:pendulum", sweep=True)


def main(argv):
    del argv
    main_for(sac, "SAC", FLAGS)


if __name__ == "__main__":
    cli.run(main)
