"""Config for experiments/evollm_finetune.py: LoRA fine-tuning of SmolLM2 on teacher trajectories."""

from ml_collections import config_dict


def get_config(variant: str = "default"):
    c = config_dict.ConfigDict()
    # teacher_texts.json written by experiments/evollm_teacher.py (EvoLLM prompts + teacher means;
    # L = 5 context lines, blocks of 2, x_decimals 2, fitness_digits 3 -- the es_bbob defaults)
    c.texts_path = "runs/evollm_teacher_long/teacher_texts.json"
    # held out: every `holdout_every`-th chunk of `holdout_chunk` consecutive examples; a chunk
    # of 50 is two whole 2-D teacher runs or one 4-D run (25 generations x blocks), so held-out
    # examples come from runs the adapters never saw
    c.holdout_chunk = 50
    c.holdout_every = 20
    c.eval_examples = 128  # held-out examples scored before / after (fixed random subset)
    c.rank = 8
    c.alpha = 16.0  # LoRA scale = alpha / rank
    c.targets = "wq,wk,wv,wo"
    c.lr = 1e-3
    c.batch_size = 8
    c.num_steps = 400
    c.max_minutes = 25.0  # stop early (and save) once this much training wall time has passed
    c.log_every = 10
    c.seed = 0
    c.init_adapters = ""  # continue from this adapters.npz (its step count offsets the data order)
    if variant == "smoke":
        c.num_steps = 3
        c.eval_examples = 8
        c.max_minutes = 5.0
        c.log_every = 1
    elif variant != "default":
        raise ValueError(f"Unknown evollm_finetune variant {variant!r}; use default or smoke.")
    return c
