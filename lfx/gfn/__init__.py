"""GFlowNets in JAX: construction DAGs with masks, losses, rollouts, exact metrics and recipes.

Submodules (import what you use; importing `lfx.gfn` stays cheap):
  base, hypergrid, positional, bitseq, ising, game24  -- environments (gymnax 1.0 compatible)
  blocksworld                                         -- BlocksWorld planning (exact transitions)
  networks, rollout                                   -- MLP policy, batched differentiable rollouts
  packed                                              -- TB / logZ-variance gradient without padding
  losses                                              -- FM, DB, TB, SubTB, log-partition variance
  exact, metrics                                      -- enumeration, exact flows, TV/JSD/logZ/modes
  replay, train                                       -- replay buffer, `make_train(config)` recipe
  ocgfn                                               -- outcome-conditioned pre-training (OC-GFN)
  ocgfn_adapt                                         -- OC-GFN adaptation: amortised predictor (N, Q)
  flow_of_reasoning                                   -- FoR: TB / log-Z-variance vs REINFORCE / PPO
"""
