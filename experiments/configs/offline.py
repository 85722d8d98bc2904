"""Configs for experiments/offline.py: `--config=experiments/configs/offline.py:<algorithm>[_<dataset>]`.

Derived from `lfx.offline.recipe.OfflineConfig` and `lfx.experiment.RunConfig` at the top level and the
algorithm's traced HParams under `hparams` (its module's defaults: the reference implementation's
D4RL-locomotion settings, see each module's docstring), so every field is settable as `--config.<field>=`.
The algorithm is chosen by the variant (its HParams differ): `td3_bc`, `iql`, `cql`, `rebrac`, `bc`,
`sac_n`, `edac`; `<algorithm>_<level>` picks another Pendulum dataset level (random, medium, expert,
medium_replay, medium_expert; default medium). Datasets come from experiments/offline_datasets.py
(`--workdir=datasets/pendulum`).

CPU budget (Pendulum is small): 64-64 networks, 10k gradient steps of batch 256, an evaluation (10
episodes) every 1000 steps, 5 seeds. The algorithms' own D4RL settings (256-256, 1M steps) are the
defaults of `OfflineConfig` / `AgentConfig` and each module's HParams.
"""

import dataclasses

from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.offline import recipe
from lfx.offline.types import AgentConfig

LEVELS = ("random", "medium", "expert", "medium_replay", "medium_expert")
RUN = RunConfig(num_seeds=5, chunk_size=20, checkpoint_every=100)
# per algorithm: AgentConfig changes from 2 critics without LayerNorm
AGENTS = {
    "rebrac": {"critic_layer_norm": True},
    "sac_n": {"num_critics": 10},
    "edac": {"num_critics": 10},
}


def _pendulum(algorithm: str, level: str = "medium"):
    static = recipe.OfflineConfig(
        algorithm=algorithm, env_name="Pendulum-v1",
        dataset=f"datasets/pendulum/pendulum-v1-{level.replace('_', '-')}",
        total_gradient_steps=10_000, gradient_steps=100, eval_every=10,
        agent=AgentConfig(hidden_sizes=(64, 64), **AGENTS.get(algorithm, {})))
    if algorithm == "rebrac":  # ReBRAC's batch (Tarasov et al. 2023, Table 8)
        static = dataclasses.replace(static, batch_size=1024)
    return to_configdict(static, RUN, hparams=recipe.algorithm_hparams(algorithm)())


VARIANTS = {
    **{name: (lambda n=name: _pendulum(n)) for name in recipe.ALGORITHMS},
    **{f"{name}_{level}": (lambda n=name, lv=level: _pendulum(n, lv))
       for name in recipe.ALGORITHMS for level in LEVELS},
}


def get_config(variant: str = "td3_bc"):
    return variant_config(VARIANTS, variant, "offline")
