"""Configs for experiments/qd_sparse.py: NS / TAXONS / SERENE / STAX and baselines on sparse tasks.

Derived from the dataclasses (`lfx.qd.comparison.ComparisonConfig` and `lfx.experiment.RunConfig` at
the top level, `lfx.qd.recipe.HParams` under `hparams`), so every field is settable as
`--config.<field>=`. Run i uses `jax.random.key(seed + i)`, i < num_seeds.

Variants (`--config=experiments/configs/qd_sparse.py:<variant>`): curling (the default), maze, arm,
ant, smoke, and es_sweep (Curling, OpenAI-ES only, tuning seeds 100-101: experiments/qd_es_sweep.py's
default). The paper budget is 5e5 evaluations with population 100 and 2000-step maze episodes;
these CPU variants use 1e4 evaluations (maze: 5e3 with 500-step episodes at four times the wheel
speed, so the reachable distance per episode is the same as with 2000 steps).
"""

from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.qd.comparison import ComparisonConfig
from lfx.qd.recipe import HParams

# OpenAI-ES: sigma 0.3, Adam lr 0.05, chosen once by experiments/qd_es_sweep.py on Curling
# (sigma in {0.02, 0.05, 0.1, 0.3, 1.0} x lr in {0.01, 0.05}, tuning seeds 100-101; see
# docs/results/qd.md). These are HParams' defaults (hparams.es_sigma, hparams.es_lr).
RUN = RunConfig(seed=0, num_seeds=5, chunk_size=20, checkpoint_every=20)


def _config(static: ComparisonConfig, run: RunConfig = RUN, **hparams):
    return to_configdict(static, run, hparams=HParams(**hparams))


VARIANTS = {
    # the paper's Curling controller: 3 hidden layers of 5
    "curling": lambda: _config(ComparisonConfig(env="Curling-sparse", hidden=(5, 5, 5))),
    "arm": lambda: _config(ComparisonConfig(env="RedundantArm-sparse")),
    "maze": lambda: _config(ComparisonConfig(
        env="HardMaze-sparse", budget=5_000,
        env_kwargs=(("max_speed", 0.008), ("max_steps_in_episode", 500)))),
    # brax on 2 shared CPU cores: ~9 s per 100 episodes of 200 steps, so a tiny NS-vs-random check.
    # The paper's AntMaze controller: 3 hidden layers of 10.
    "ant": lambda: _config(
        ComparisonConfig(env="AntMaze-sparse", hidden=(10, 10, 10), algorithms=("ns", "random"),
                         budget=2_000),
        RunConfig(seed=0, num_seeds=3, chunk_size=5, checkpoint_every=5)),
    "es_sweep": lambda: _config(
        ComparisonConfig(env="Curling-sparse", hidden=(5, 5, 5), algorithms=("openai_es",),
                         image_size=0),
        RunConfig(seed=100, num_seeds=2)),
    "smoke": lambda: _config(
        ComparisonConfig(env="PointMass-sparse", budget=600, population_size=20,
                         serene_chunk_size=200, retrain_every=5,
                         env_kwargs=(("max_speed", 0.03), ("max_steps_in_episode", 50))),
        RunConfig(seed=0, num_seeds=2, chunk_size=5, checkpoint_every=5)),
}


def get_config(variant: str = "curling"):
    return variant_config(VARIANTS, variant, "qd_sparse")
