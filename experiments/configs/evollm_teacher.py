"""Config for experiments/evollm_teacher.py: teacher trajectories -> small char-level Llama."""

from ml_collections import config_dict


def get_config(variant: str = "default"):
    c = config_dict.ConfigDict()
    c.teachers = "snes,cma_es"
    # 12 BBOB functions (the 8 test functions + 4 others; all 24 compile too slowly on this CPU);
    # tasks are freshly sampled (x_opt, f_opt, rotations), not the evaluation tasks.
    c.train_fns = "sphere,ellipsoidal,rastrigin,bueche_rastrigin,attractive_sector,step_ellipsoidal,rosenbrock,discus,bent_cigar,sharp_ridge,different_powers,schaffers_f7"
    c.dims = "2,4"  # queried in blocks of 2, like EvoLLM at test time
    c.tasks_per_dim = 64
    c.population_size = 8
    c.num_generations = 25
    c.init_mean_scale = 3.0  # teacher runs start at U[-3, 3]^D so contexts cover the box
    # EvoLLM prompt settings (must match the es_bbob evollm block)
    c.block_size = 2
    c.context_length = 5
    c.x_decimals = 2
    c.fitness_digits = 3
    # small LM
    c.dim = 64
    c.n_layers = 2
    c.n_heads = 4
    c.n_kv_heads = 2
    c.hidden_dim = 128
    c.seq_len = 96
    c.batch_size = 16
    c.num_steps = 2000
    c.lr = 3e-3
    c.seed = 0
    if variant == "smoke":
        c.tasks_per_dim = 8
        c.num_steps = 20
        c.dims = "2"
    return c
