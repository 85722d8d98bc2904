"""Train PPO over several seeds (and optionally a hyperparameter grid) in one vmapped call.

    python experiments/ppo.py                                   # CartPole-v1, 8 seeds
    python experiments/ppo.py --config=experiments/configs/ppo.py:breakout
    python experiments/ppo.py --config.total_timesteps=100000 --config.num_seeds=4
    python experiments/ppo.py --sweep="lr=1e-4,2.5e-4,1e-3;ent_coef=0.0,0.01"
    python experiments/ppo.py --workdir=runs/ppo_cartpole --resume   # continue a killed run
    python experiments/ppo.py --print_config                    # every field, resolved
    LFX_DISTRIBUTED=1 python experiments/ppo.py --shard --workdir=...  # per process (SCALING.md)

Writes `<workdir>/metrics.jsonl|csv` (one row per setting, seed and update), `summary.json` (per
setting), `learning_curve.png`, and orbax checkpoints every `config.checkpoint_every` updates
(the body is `lfx/rl/main.py`, shared by every RL recipe script).
"""

from __future__ import annotations

import numpy as np

from lfx.experiment import cli
from lfx.rl import ppo
from lfx.rl.main import main_for

FLAGS = cli.define_flags("ppo.py:cartpole", sweep=True)
KL_WARN = 1.0  # approx_kl far above PPO's usual ~0.01-0.05: the learning rate is likely too high


def warn_on_kl(metrics, done):
    kl = metrics.get("train/approx_kl")
    if kl is not None and np.nanmax(kl) > KL_WARN:
        print(f"warning: approx_kl reached {np.nanmax(kl):.3g} by update {done} (PPO usually "
              f"keeps it below ~0.05); the learning rate is probably too high.", flush=True)


def main(argv):
    del argv
    main_for(ppo, "PPO", FLAGS, on_chunk=warn_on_kl)


if __name__ == "__main__":
    cli.run(main)
