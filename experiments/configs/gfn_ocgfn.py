"""Configs for experiments/gfn_ocgfn.py: `--config=experiments/configs/gfn_ocgfn.py:<variant>`.

Derived from the dataclasses: `lfx.gfn.ocgfn.OCGFNConfig` (pre-training; `--config.env_kwargs.dim=`)
and `lfx.gfn.experiment.OCGFNRun` (mode, seeds, first_seed, pretrain_seed, pretrained_path, ...)
at the top level, `lfx.gfn.ocgfn.OCGFNHParams` under `hparams` (`--config.hparams.lr=`) and
`lfx.gfn.experiment.OCGFNAdaptSettings` under `adapt` (`--config.adapt.num_outcomes=16`).

Every variant pre-trains with `method = "paper"` (GAFlowNet explorer positives, on-policy negatives,
outcome teleportation; `lfx.gfn.ocgfn`); `--config.method=relabel` gives the hindsight-relabelling
variant that the figures recorded before issue 19 used.

Pre-training variants: `hypergrid` (2x8, 64 outcomes; the default), `bitseq` (n 8, k 2: 256
outcomes), `hypergrid4x8`. Adaptation variants (`mode = "adapt"`): `adapt_hypergrid` (4x8: 4096
outcomes, standard reward R0 1e-3, R1 0.5, R2 2: 16 mode states) and `adapt_bitseq` (n 10, k 2:
1024 outcomes, 8 random modes, beta 10). Both pre-train one OC-GFN (10000 iterations, seed
`pretrain_seed`) unless `pretrained_path` points to a saved one, then adapt with `seeds` seeds
against TB from scratch.
"""

from lfx.experiment import to_configdict
from lfx.experiment.config import variant_config
from lfx.gfn.experiment import OCGFNAdaptSettings, OCGFNRun
from lfx.gfn.ocgfn import OCGFNConfig, OCGFNHParams

PRETRAIN = dict(batch_size=64, num_iterations=3000, hidden=(128, 128), eval_every=250, eval_batch=1024)


def _config(static: OCGFNConfig, run: OCGFNRun = OCGFNRun()):
    return to_configdict(static, run, hparams=OCGFNHParams(),
                         adapt=OCGFNAdaptSettings())


def _adapt(env: str, env_kwargs: tuple):
    static = OCGFNConfig(env=env, env_kwargs=env_kwargs, **{**PRETRAIN, "num_iterations": 10000})
    return _config(static, OCGFNRun(mode="adapt"))


VARIANTS = {
    "hypergrid": lambda: _config(OCGFNConfig(env_kwargs=(("dim", 2), ("height", 8)), **PRETRAIN)),
    "bitseq": lambda: _config(OCGFNConfig(env="bitseq", env_kwargs=(("k", 2), ("n", 8)), **PRETRAIN)),
    "hypergrid4x8": lambda: _config(OCGFNConfig(
        env_kwargs=(("dim", 4), ("height", 8)), **{**PRETRAIN, "num_iterations": 6000,
                                                   "hidden": (256, 256)})),
    "adapt_hypergrid": lambda: _adapt("hypergrid", (("dim", 4), ("height", 8), ("r0", 1e-3))),
    "adapt_bitseq": lambda: _adapt("bitseq", (("beta", 10.0), ("k", 2), ("n", 10), ("num_modes", 8))),
}


def get_config(variant: str = "hypergrid"):
    return variant_config(VARIANTS, variant, "gfn_ocgfn")
