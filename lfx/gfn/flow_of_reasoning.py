"""Flow of Reasoning (Yu et al. 2024, arXiv:2406.05673): where each piece lives.

  lfx.gfn.for_train         FoRConfig, FoRHParams, `make_train(config, env, env_params, objs)`
                            -> FoRRecipe, `method_setup` (the methods the experiments compare)
  lfx.gfn.for_objective     the grouped TB / log-partition-variance losses
  lfx.gfn.for_baselines     REINFORCE and PPO on the same network
  lfx.gfn.for_local_search  FoR's local search (re-sample the second half of the best sample 16
                            times, keep improvements) and lfx's first destroy-and-rebuild step
  lfx.gfn.for_game24        Game24 puzzle sets and `make_game24_train`

The names below are re-exported so `from lfx.gfn.flow_of_reasoning import ...` keeps working.
"""

from lfx.gfn.for_baselines import behaviour_log_probs, ppo_minibatch_loss, ppo_update, reinforce_update
from lfx.gfn.for_game24 import make_game24_train, make_puzzles, puzzles_to_objs
from lfx.gfn.for_local_search import improve_best, local_search
from lfx.gfn.for_objective import grouped_gfn_loss, grouped_log_partition_variance
from lfx.gfn.for_train import (
    COMPARED_METHODS,
    METHODS,
    FoRConfig,
    FoRHParams,
    FoRRecipe,
    FoRState,
    make_train,
    method_setup,
)

__all__ = [
    "COMPARED_METHODS", "METHODS", "FoRConfig", "FoRHParams", "FoRRecipe", "FoRState",
    "behaviour_log_probs", "grouped_gfn_loss", "grouped_log_partition_variance", "improve_best", "local_search",
    "make_game24_train", "make_puzzles", "make_train", "method_setup", "ppo_minibatch_loss",
    "ppo_update", "puzzles_to_objs", "reinforce_update",
]
