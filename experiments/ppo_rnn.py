"""Train recurrent PPO (a GRU actor-critic) over several seeds in one vmapped call.

    python experiments/ppo_rnn.py                                             # CartPole-v1, PureJaxRL's ppo_rnn
    python experiments/ppo_rnn.py --config=experiments/configs/ppo_rnn.py:memory_chain
    python experiments/ppo_rnn.py --config=experiments/configs/ppo_rnn.py:cartpole_masked  # (x, theta) only
    python experiments/ppo_rnn.py --config=experiments/configs/ppo_rnn.py:memory_chain --config.memory=False
    python experiments/ppo_rnn.py --sweep="lr=2.5e-4,1e-3" --config.num_seeds=4
    python experiments/ppo.py --config=experiments/configs/ppo_rnn.py:ff_memory_chain  # feed-forward PPO baseline

Writes `<workdir>/metrics.jsonl|csv`, `summary.json`, `learning_curve.png` and checkpoints (the body is
`lfx/rl/main.py`, shared by every RL recipe script).
"""

from __future__ import annotations

from lfx.experiment import cli
from lfx.rl import ppo_rnn
from lfx.rl.main import main_for

FLAGS = cli.define_flags("ppo_rnn.py:cartpole", sweep=True)


def main(argv):
    del argv
    main_for(ppo_rnn, "PPO_RNN", FLAGS)


if __name__ == "__main__":
    cli.run(main)
