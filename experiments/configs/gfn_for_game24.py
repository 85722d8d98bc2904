"""Config for experiments/gfn_for_game24.py (Flow of Reasoning on Game24).

Derived from the dataclasses `lfx.gfn.for_experiment.Game24Problems` and `FoRComparison` (flat:
`--config.num_iterations=`, `"--config.methods=('for','tb')"`).

Variants: `default` = the first run (plain TB vs REINFORCE, seeds trained one after another; its
documented numbers come from this variant); `for_full` = the BlocksWorld method set on the same
puzzles, network and budget: FoR (log-partition-variance TB, 4 samples per puzzle, per-puzzle
replay of distinct solutions, local search, target R^2), FoR without buffer / local search, plain
TB, PPO and REINFORCE, seeds as one `vmap`.

Rewards and local search follow FoR's public code (failure reward 0.001; local search = 16
re-samplings of the second half of each puzzle's best sample, improvements kept). The settings of
lfx's first version, behind the results documented before 2026-12: `--config.failure_reward=0.01
--config.for_local_search=every`.
"""

from lfx.experiment import to_configdict
from lfx.experiment.config import variant_config
from lfx.gfn.for_experiment import FoRComparison, Game24Problems

BASE = dict(seeds=3, num_iterations=1500, n_samples=64)

VARIANTS = {
    "default": lambda: to_configdict(Game24Problems(), FoRComparison(
        methods=("tb", "reinforce"), vmap_seeds=False, **BASE)),
    "for_full": lambda: to_configdict(Game24Problems(), FoRComparison(
        methods=("for", "for_no_replay", "tb", "ppo", "reinforce"), vmap_seeds=True, **BASE)),
}


def get_config(variant: str = "default"):
    return variant_config(VARIANTS, variant, "gfn_for_game24")
