"""Configs for experiments/meta_lpg.py: `--config=experiments/configs/meta_lpg.py:<variant>`.

Derived from the dataclasses (`lfx.meta.lpg_train.MetaLPGConfig` and `lfx.experiment.RunConfig` at
the top level, the estimator's traced HParams under `hparams`: `lfx.meta.es.HParams` for ES,
`lfx.meta.metagrad.HParams` for meta-gradients), so every field is settable as `--config.<field>=`.

Variants (CPU scale, a few minutes each on a shared 2-core machine):
  ta_lpg_es / lpg_es: OpenAI-ES (lr 0.02, σ 0.1, no decay), antithetic task sampling (each +/- pair
    on one random level of LPG-Random-Small and, for TA-LPG, one lifetime drawn log-uniformly in
    [10, 40] updates).
  ta_lpg_metagrad / lpg_metagrad: truncated meta-gradients (window 5 inner updates, Adam 1e-3)
    along lifetimes of 40 updates on random levels.
Paper scale (accelerator): hidden_size=256, population 2 x 512, lifetimes 10-250 (not run here).
"""

from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.meta import es, metagrad
from lfx.meta.lpg_train import MetaLPGConfig

ES_HP = es.HParams(lr=0.02, lr_decay=1.0, sigma=0.1, sigma_decay=1.0)


def _es(temporally_aware: bool):
    static = MetaLPGConfig(estimator="es", temporally_aware=temporally_aware,
                           lifetime_range=(10.0, 40.0) if temporally_aware else ())
    return to_configdict(static, RunConfig(num_seeds=1, chunk_size=1, checkpoint_every=10),
                         hparams=ES_HP)


def _metagrad(temporally_aware: bool):
    static = MetaLPGConfig(estimator="metagrad", temporally_aware=temporally_aware,
                           lifetime_range=())
    return to_configdict(static, RunConfig(num_seeds=1, chunk_size=50, checkpoint_every=500),
                         hparams=metagrad.HParams(meta_lr=1e-3))


VARIANTS = {
    "ta_lpg_es": lambda: _es(True),
    "lpg_es": lambda: _es(False),
    "ta_lpg_metagrad": lambda: _metagrad(True),
    "lpg_metagrad": lambda: _metagrad(False),
}


def get_config(variant: str = "ta_lpg_es"):
    return variant_config(VARIANTS, variant, "meta_lpg")
