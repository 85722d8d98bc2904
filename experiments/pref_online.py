"""The KL-regularised policy-gradient baseline (RLOO) on a preference task's prompts and reward.

    python experiments/pref_online.py                                   # RLOO, kl_coef 0.05, 5 seeds
    python experiments/pref_online.py --sweep="kl_coef=0.01,0.03,0.1,0.3"   # its reward-KL frontier

`lfx.pref.online` through the same body as experiments/pref.py (`lfx.pref.main`), so its
summary.json and frontier.png compare with DPO's directly (the same evaluation code).
"""

from __future__ import annotations

from lfx.experiment import cli
from lfx.pref import online
from lfx.pref.main import main_for

FLAGS = cli.define_flags("pref_online.py:rloo", sweep=True)


def main(argv):
    del argv
    main_for(online, "rloo", FLAGS)


if __name__ == "__main__":
    cli.run(main)
