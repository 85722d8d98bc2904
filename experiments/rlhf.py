"""Online RL on a language model (PPO, GRPO, RLOO, RTO) through the shared harness.

    python experiments/rlhf.py                                          # GRPO on task (a), 5 seeds
    python experiments/rlhf.py --config=experiments/configs/rlhf.py:rloo \\
        --sweep="kl_coef=0.01,0.03,0.1,0.3"                             # RLOO's reward-KL frontier
    python experiments/rlhf.py --config=experiments/configs/rlhf.py:grpo_arithmetic   # RLVR

`lfx.pref.rlhf` through the same body as experiments/pref.py (`lfx.pref.main`): progress,
checkpoints, exact resume (`--resume`), summary.json, learning_curve.png and frontier.png, so its
runs compare with DPO's directly (the same evaluation code). The task is the generated folder
`config.task` that `config.reward` scores (experiments/pref_task.py, experiments/rlhf_task.py).
"""

from __future__ import annotations

from lfx.experiment import cli
from lfx.pref import rlhf
from lfx.pref.main import main_for

FLAGS = cli.define_flags("rlhf.py:grpo", sweep=True)


def main(argv):
    del argv
    main_for(rlhf, "rlhf", FLAGS)


if __name__ == "__main__":
    cli.run(main)
