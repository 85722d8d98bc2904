"""Config for experiments/gfn_for_blocksworld.py (Flow of Reasoning on BlocksWorld vs PPO / REINFORCE).

Derived from the dataclasses `lfx.gfn.for_experiment.BlocksworldProblems` and `FoRComparison`
(flat: `--config.slack=2`, `"--config.methods=('for_no_replay',)"`).

Variants: `default` = the paper's 6-step split (step limit = optimal plan length, so most problems
have one or two correct plans); `slack2` = same problems, step limit = optimal length + 2 (tens of
correct plans per problem: room for diversity); `step4` / `step4_slack2` = the 4-step split.
FoR samples 4 plans per problem per step and its reward temperature ends at 2 (log R x 2); the
test samples 40 plans per problem.

Rewards and local search follow FoR's public code: R = 100 if solved, else 10 x the fraction of goal
facts met, plus the step limit (`step_reward=1`, no floor: `failure_reward=0`); local search = 16
re-samplings of the second half of each problem's best sample, improvements kept. The settings of
lfx's first version, behind the results documented before 2026-12: `--config.failure_reward=0.01
--config.step_reward=0 --config.for_local_search=every`.
"""

from lfx.experiment import to_configdict
from lfx.experiment.config import variant_config
from lfx.gfn.for_experiment import BlocksworldProblems, FoRComparison


def _config(**problems):
    return to_configdict(BlocksworldProblems(**problems), FoRComparison())


VARIANTS = {
    "default": _config,
    "slack2": lambda: _config(slack=2),
    "step4": lambda: _config(plan_length=4),
    "step4_slack2": lambda: _config(plan_length=4, slack=2),
}


def get_config(variant: str = "default"):
    return variant_config(VARIANTS, variant, "gfn_for_blocksworld")
