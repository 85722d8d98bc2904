"""Config for experiments/gfn_for_blocksworld.py (Flow of Reasoning on BlocksWorld vs PPO / REINFORCE).

Variants: `default` = the paper's 6-step split (step limit = optimal plan length, so most problems
have one or two correct plans); `slack2` = same problems, step limit = optimal length + 2 (tens of
correct plans per problem: room for diversity); `step4` / `step4_slack2` = the 4-step split.
"""

import ml_collections


def get_config(variant: str = "default"):
    c = ml_collections.ConfigDict()
    c.num_blocks, c.max_limit = 4, 8
    c.plan_length, c.slack = 6, 0
    c.num_train, c.num_test = 15, 30  # the paper trains from about 15 examples
    c.problem_seed = 0
    c.seeds = 5
    c.methods = ("for", "tb", "ppo", "reinforce")
    c.batch_size = 64
    c.num_iterations = 1500
    c.hidden = (128, 128)
    c.lr, c.epsilon = 1e-3, 0.05
    c.n_samples = 40  # FoR's BlocksWorld test samples 40 plans per problem
    # FoR (log-partition-variance TB + per-problem replay of distinct successes + local search)
    c.for_samples_per_problem = 4  # FoR samples 4 plans per problem per step
    c.for_replay_capacity, c.for_replay_per_problem = 64, 4
    c.for_reward_beta = 2.0  # FoR's reward temperature ends at 2 (log R x 2)
    # reward maximisers on the same network
    c.baseline_decay = 0.95
    c.ppo_epochs, c.ppo_minibatches, c.clip_eps, c.vf_coef, c.ent_coef = 4, 4, 0.2, 0.5, 0.0
    if variant == "slack2":
        c.slack = 2
    elif variant == "step4":
        c.plan_length = 4
    elif variant == "step4_slack2":
        c.plan_length, c.slack = 4, 2
    elif variant != "default":
        raise ValueError(f"Unknown variant {variant!r}: use default, slack2, step4 or step4_slack2.")
    return c
