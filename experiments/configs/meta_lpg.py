"""ml_collections configs for experiments/meta_lpg.py (`--config=...meta_lpg.py:<variant>`).

Variants (CPU scale, a few minutes each on a shared 2-core machine):
  ta_lpg_es / lpg_es: OpenAI-ES, antithetic task sampling (each +/- pair on one random level of
    LPG-Random-Small and, for TA-LPG, one lifetime drawn log-uniformly in [10, 40] updates).
  ta_lpg_metagrad / lpg_metagrad: truncated meta-gradients (window 5 inner updates, Adam 1e-3)
    along lifetimes of 40 updates on random levels.
Paper scale (accelerator): hidden_size=256, population 2 x 512, lifetimes 10-250 (not run here).
"""

import ml_collections


def get_config(variant: str = "ta_lpg_es") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.estimator = "es" if variant.endswith("_es") else "metagrad"
    c.temporally_aware = variant.startswith("ta_")
    c.env_name = "LPG-Random-Small"
    c.random_levels = True
    c.hidden_size = 32
    c.num_envs = 8
    c.num_steps = 20
    c.max_updates = 40
    c.agent_hidden = 32
    c.agent_lr = 0.02
    # ES
    c.population_size = 16
    c.num_generations = 25
    c.es_lr = 0.02
    c.sigma = 0.1
    c.lifetime_range = (10.0, 40.0) if c.temporally_aware else ()
    # Meta-gradient
    c.metagrad_steps = 150
    c.window = 5
    c.meta_lr = 1e-3
    c.seed = 0
    c.max_minutes = 10.0
    if variant not in ("ta_lpg_es", "lpg_es", "ta_lpg_metagrad", "lpg_metagrad"):
        raise ValueError(f"Unknown variant {variant!r}.")
    return c
