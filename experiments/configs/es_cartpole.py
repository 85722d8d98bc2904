"""Config for experiments/es_cartpole.py: neuroevolution of a small MLP policy with block-wise EvoLLM."""

from ml_collections import config_dict


def get_config(variant: str = "default"):
    c = config_dict.ConfigDict()
    c.env = "CartPole-v1"
    c.hidden = 4  # 4-4-2 tanh MLP: 30 parameters -> 15 blocks of 2 per EvoLLM query
    c.strategies = "hill_climbing,open_es,snes,evollm"
    c.num_seeds = 3
    c.population_size = 16
    c.num_generations = 20
    c.num_episodes = 1
    c.max_steps = 500
    c.init_mean = 0.0
    c.hill_climbing_std = 0.5
    c.open_es_lr = 0.3
    c.open_es_std = 1.0
    c.tag = variant
    c.ablation = ""
    c.evollm = config_dict.ConfigDict(
        dict(lm="teacher", lm_path="runs/evollm_teacher/teacher_lm.pkl", block_size=2, context_length=5,
             context_selection="best", sort_order="least_to_most", x_decimals=2, fitness_digits=3,
             sigma=0.5, sigma_decay=1.0, temperature=0.0, max_rows=512)
    )
    if variant == "smollm2":
        c.strategies = "evollm"
        c.evollm.lm = "smollm2"
        c.num_generations = 10
    elif variant == "smoke":
        c.num_generations = 3
        c.num_seeds = 1
        c.max_steps = 50
        c.evollm.lm = "toy"
    return c
