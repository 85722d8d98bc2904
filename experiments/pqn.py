"""Train PQN (Gallici et al. 2024) over several seeds (and optionally a grid) in one vmapped call.

    python experiments/pqn.py                                   # CartPole-v1, 5 seeds, purejaxql's config
    python experiments/pqn.py --config=experiments/configs/pqn.py:breakout
    python experiments/pqn.py --config.total_timesteps=100000 --config.num_seeds=2
    python experiments/pqn.py --sweep="lr=1e-4,3e-4;td_lambda=0.0,0.65,0.95"
    python experiments/pqn.py --workdir=runs/pqn_cartpole --resume   # continue a killed run
    python experiments/pqn.py --print_config                    # every field, resolved

Writes `<workdir>/metrics.jsonl|csv` (one row per setting, seed and update), `summary.json` (per
setting), `learning_curve.png`, and orbax checkpoints every `config.checkpoint_every` updates (the
body is `lfx/rl/main.py`, shared by every RL recipe script).
"""

from __future__ import annotations

from lfx.experiment import cli
from lfx.rl import pqn
from lfx.rl.main import main_for

FLAGS = cli.define_flags("pqn.py:cartpole", sweep=True)


def main(argv):
    del argv
    main_for(pqn, "PQN", FLAGS)


if __name__ == "__main__":
    cli.run(main)
