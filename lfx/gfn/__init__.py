"""GFlowNets in JAX: construction DAGs with masks, losses, rollouts, exact metrics and recipes.

Submodules (import what you use; importing `lfx.gfn` stays cheap):
  base, hypergrid, positional, bitseq, ising, game24  -- environments (gymnax 1.0 compatible)
  blocksworld                                         -- BlocksWorld planning (exact transitions)
  networks, rollout                                   -- MLP policy, batched differentiable rollouts
  packed                                              -- TB / logZ-variance gradient without padding
  losses                                              -- FM, DB, TB, SubTB, log-partition variance
  exact, metrics                                      -- enumeration, exact flows, TV/JSD/logZ/modes
  replay, train                                       -- replay buffer, `make_train(config)` recipe
  recipe                                              -- chunk-safe iteration keys, hparam checks
  ocgfn                                               -- outcome-conditioned pre-training (OC-GFN)
  ocgfn_adapt                                         -- OC-GFN adaptation: amortised predictor (N, Q)
  report                                              -- per-seed tables of OC-GFN adaptation runs
  for_train, for_objective, for_baselines,            -- Flow of Reasoning: recipe, grouped TB /
  for_local_search, for_game24                           log-Z variance, REINFORCE / PPO, local
                                                         search, Game24 puzzles
  flow_of_reasoning                                   -- index of the FoR modules (re-exports)

The Flow of Reasoning names (`FoRConfig`, `FoRHParams`, `method_setup`, `make_game24_train`,
`make_puzzles`, `local_search`, ...) are also importable from `lfx.gfn` itself, loaded on first use.
"""

import importlib

_LAZY = {name: "lfx.gfn.flow_of_reasoning" for name in (
    "COMPARED_METHODS", "FoRConfig", "FoRHParams", "FoRRecipe", "FoRState", "behaviour_log_probs",
    "grouped_gfn_loss", "grouped_log_partition_variance", "local_search", "make_game24_train",
    "make_puzzles", "method_setup", "ppo_minibatch_loss", "ppo_update", "puzzles_to_objs",
    "reinforce_update",
)}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lfx.gfn' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
