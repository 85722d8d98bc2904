"""Configs for experiments/es_bbob.py (EvoLLM vs evosax baselines on BBOB).

Variants (`--config=experiments/configs/es_bbob.py:<variant>`):
  baselines      random search, Gaussian hill climbing, OpenAI-ES (tuned), SNES, CMA-ES; 8 fns x 2/5/10-D
  smollm2        EvoLLM with SmolLM2-135M-Instruct (zero-shot)
  smollm2_lora   EvoLLM with SmolLM2 + LoRA adapters from experiments/evollm_finetune.py
  teacher        EvoLLM with the small char-level Llama trained on teacher trajectories
  untrained      EvoLLM with the same small Llama at random init (control for `teacher`)
  ablate_sort    / ablate_digits / ablate_context: EvoLLM (lm from --config.evollm.lm) ablations
  tune_open_es_lr / tune_open_es_std: the OpenAI-ES tuning grid (5-D sphere, rastrigin, rosenbrock)
  smoke          tiny everything (toy LM) for a quick check
"""

from ml_collections import config_dict

from lfx.es.bbob import EVOLLM_FNS


def get_config(variant: str = "baselines"):
    c = config_dict.ConfigDict()
    c.strategies = "random_search,hill_climbing,open_es,snes,cma_es"
    c.fns = ",".join(EVOLLM_FNS)
    c.dims = "2,5,10"
    c.num_seeds = 5
    c.population_size = 8
    c.num_generations = 25
    c.init_mean = 0.0
    c.hill_climbing_std = 0.5
    c.open_es_lr = 0.3  # best of {0.01, 0.03, 0.1, 0.3} (std 0.5); see docs/results/es.md
    c.open_es_std = 1.0  # best of {0.1, 0.3, 0.5, 1.0} (lr 0.1)
    c.tag = variant
    c.evollm = config_dict.ConfigDict(
        {
            "lm": "smollm2",  # smollm2 | teacher | untrained | toy
            "lm_path": "runs/evollm_teacher/teacher_lm.pkl",
            "adapter_path": "",  # LoRA adapters (.npz) merged into SmolLM2; needs lm="smollm2"
            "block_size": 2,
            "context_length": 5,
            "context_selection": "best",
            "sort_order": "least_to_most",
            "x_decimals": 2,
            "fitness_digits": 3,
            "sigma": 0.5,
            "sigma_decay": 1.0,
            "temperature": 0.0,
            "max_rows": 256,  # LM rows per generate call (runs are chunked to fit)
        }
    )
    if variant == "baselines":
        pass
    elif variant in ("smollm2", "teacher", "untrained"):
        c.strategies = "evollm"
        c.evollm.lm = variant
    elif variant == "smollm2_lora":
        c.strategies = "evollm"
        c.evollm.lm = "smollm2"
        c.evollm.adapter_path = "runs/evollm_finetune/adapters.npz"
    elif variant == "smoke":
        c.strategies = "random_search,hill_climbing,evollm"
        c.fns = "sphere,rastrigin"
        c.dims = "2"
        c.num_seeds = 2
        c.num_generations = 5
        c.evollm.lm = "toy"
    elif variant.startswith("tune_open_es"):
        c.strategies = "open_es"
        c.fns = "sphere,rastrigin,rosenbrock"
        c.dims = "5"
        c.num_seeds = 3
        c.ablation = {"tune_open_es_lr": "open_es_lr=0.01,0.03,0.1,0.3",
                      "tune_open_es_std": "open_es_std=0.1,0.3,0.5,1.0"}[variant]
    elif variant.startswith("ablate_"):
        c.strategies = "evollm"
        c.evollm.lm = "teacher"
        c.dims = "2"
        c.ablation = {
            "ablate_sort": "sort_order=least_to_most,most_to_least,random",
            "ablate_digits": "x_decimals=1,2,3",
            "ablate_context": "context_length=2,3,5,8",
        }[variant]
    else:
        raise ValueError(f"Unknown es_bbob variant {variant!r}.")
    if "ablation" not in c:
        c.ablation = ""
    return c
