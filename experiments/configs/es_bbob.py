"""Configs for experiments/es_bbob.py (EvoLLM vs evosax baselines on BBOB).

Derived from the dataclasses (`lfx.es.experiment.BBOBSettings` and `ESSettings` at the top level,
`EvoLLMSettings` under `evollm`), so every field is settable as `--config.<field>=`.

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

import dataclasses

from lfx.es.experiment import BBOBSettings, ESSettings, EvoLLMSettings
from lfx.experiment import to_configdict
from lfx.experiment.config import variant_config

TEACHER_LM = "runs/evollm_teacher/teacher_lm.npz"


def _config(tag: str, bbob: BBOBSettings = BBOBSettings(), es: ESSettings = ESSettings()):
    return to_configdict(dataclasses.replace(bbob, tag=tag), es)


def _evollm(tag: str, **evollm):
    lm = evollm.pop("lm", tag)
    path = TEACHER_LM if lm in ("teacher", "untrained") else ""
    return _config(tag, es=ESSettings(strategies="evollm",
                                      evollm=EvoLLMSettings(lm=lm, lm_path=path, **evollm)))


def _tune(tag: str, ablation: str):
    return _config(tag, BBOBSettings(fns="sphere,rastrigin,rosenbrock", dims="5", num_seeds=3),
                   ESSettings(strategies="open_es", ablation=ablation))


def _ablate(tag: str, ablation: str):
    es = ESSettings(strategies="evollm", ablation=ablation,
                    evollm=EvoLLMSettings(lm="teacher", lm_path=TEACHER_LM))
    return _config(tag, BBOBSettings(dims="2"), es)


VARIANTS = {
    "baselines": lambda: _config("baselines"),
    "smollm2": lambda: _evollm("smollm2"),
    "teacher": lambda: _evollm("teacher"),
    "untrained": lambda: _evollm("untrained"),
    "smollm2_lora": lambda: _evollm("smollm2_lora", lm="smollm2",
                                    adapter_path="runs/evollm_finetune/adapters.npz"),
    "smoke": lambda: _config(
        "smoke", BBOBSettings(fns="sphere,rastrigin", dims="2", num_seeds=2),
        ESSettings(strategies="random_search,hill_climbing,evollm", num_generations=5,
                   evollm=EvoLLMSettings(lm="toy"))),
    "tune_open_es_lr": lambda: _tune("tune_open_es_lr", "open_es_lr=0.01,0.03,0.1,0.3"),
    "tune_open_es_std": lambda: _tune("tune_open_es_std", "open_es_std=0.1,0.3,0.5,1.0"),
    "ablate_sort": lambda: _ablate("ablate_sort",
                                   "sort_order=least_to_most,most_to_least,random"),
    "ablate_digits": lambda: _ablate("ablate_digits", "x_decimals=1,2,3"),
    "ablate_context": lambda: _ablate("ablate_context", "context_length=2,3,5,8"),
}


def get_config(variant: str = "baselines"):
    return variant_config(VARIANTS, variant, "es_bbob")
