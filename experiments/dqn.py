"""Train DQN over several seeds (and optionally a hyperparameter grid) in one vmapped call.

    python experiments/dqn.py                                   # CartPole-v1, 5 seeds, PureJaxRL's settings
    python experiments/dqn.py --config.total_timesteps=100000 --config.num_seeds=2
    python experiments/dqn.py --config.double_dqn=True --config.loss=huber
    python experiments/dqn.py --sweep="lr=1e-4,2.5e-4,1e-3;tau=1.0,0.1"
    python experiments/dqn.py --workdir=runs/dqn_cartpole --resume   # continue a killed run
    python experiments/dqn.py --print_config                    # every field, resolved

Writes `<workdir>/metrics.jsonl|csv` (one row per setting, seed and update), `summary.json` (per
setting), `learning_curve.png`, and orbax checkpoints (the replay buffer included) every
`config.checkpoint_every` updates (the body is `lfx/rl/main.py`, shared by every RL recipe script).
"""

from __future__ import annotations

from lfx.experiment import cli
from lfx.rl import dqn
from lfx.rl.main import main_for

FLAGS = cli.define_flags("dqn.py:cartpole", sweep=True)


def main(argv):
    del argv
    main_for(dqn, "DQN", FLAGS)


if __name__ == "__main__":
    cli.run(main)
