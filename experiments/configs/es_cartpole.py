"""Configs for experiments/es_cartpole.py: neuroevolution of a small MLP policy with block-wise EvoLLM.

Derived from the dataclasses (`lfx.es.experiment.NeuroSettings` and `ESSettings` at the top level,
`EvoLLMSettings` under `evollm`), so every field is settable as `--config.<field>=`.

Variants: default (teacher-trained small LM + baselines), smollm2 (EvoLLM with SmolLM2 only),
smoke (toy LM, 3 generations of 50 steps).
"""

from lfx.es.experiment import ESSettings, EvoLLMSettings, NeuroSettings
from lfx.experiment import to_configdict
from lfx.experiment.config import variant_config

TEACHER_LM = "runs/evollm_teacher/teacher_lm.npz"


def _config(tag="default", strategies="hill_climbing,open_es,snes,evollm", lm="teacher",
            num_generations=20, **neuro):
    es = ESSettings(strategies=strategies, population_size=16, num_generations=num_generations,
                    evollm=EvoLLMSettings(lm=lm, lm_path=TEACHER_LM if lm == "teacher" else "",
                                          max_rows=512))
    return to_configdict(NeuroSettings(tag=tag, **neuro), es)


VARIANTS = {
    "default": _config,
    "smollm2": lambda: _config("smollm2", strategies="evollm", lm="smollm2", num_generations=10),
    "smoke": lambda: _config("smoke", lm="toy", num_generations=3, num_seeds=1, max_steps=50),
}


def get_config(variant: str = "default"):
    return variant_config(VARIANTS, variant, "es_cartpole")
