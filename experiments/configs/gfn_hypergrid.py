"""Configs for experiments/gfn_hypergrid.py: `--config=experiments/configs/gfn_hypergrid.py:<variant>`.

Derived from the dataclasses (`lfx.gfn.experiment.HypergridLosses` and `lfx.experiment.RunConfig`
at the top level, `lfx.gfn.train.GFNHParams` under `hparams`), so every field is settable as
`--config.<field>=` (`--config.losses=tb,db`, `--config.num_seeds=5`, `--config.hparams.lr=3e-4`).

Variants: `quick` (2x8, R0 0.1: minutes on 2 CPU cores; the default), `hard` (2x8, R0 1e-3, epsilon
0.05), `grid4x8` (4x8, R0 1e-3; the exact evaluation enumerates 4,096 states).
"""

from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.gfn.experiment import HypergridLosses
from lfx.gfn.train import GFNHParams

RUN = RunConfig(seed=0, num_seeds=3, chunk_size=100, checkpoint_every=500)


def _config(static: HypergridLosses, run: RunConfig = RUN, **hparams):
    return to_configdict(static, run, hparams=GFNHParams(**hparams))


VARIANTS = {
    "quick": lambda: _config(HypergridLosses()),
    "hard": lambda: _config(HypergridLosses(r0=1e-3, num_iterations=4000), epsilon=0.05),
    "grid4x8": lambda: _config(HypergridLosses(dim=4, r0=1e-3, num_iterations=4000, eval_every=250),
                               epsilon=0.05),
}


def get_config(variant: str = "quick"):
    return variant_config(VARIANTS, variant, "gfn_hypergrid")
