"""Configs for experiments/qd_sparse.py: NS / TAXONS / SERENE / STAX and baselines on sparse tasks.

Derived from the dataclasses (`lfx.qd.comparison.ComparisonConfig` and `lfx.experiment.RunConfig` at
the top level, `lfx.qd.recipe.HParams` under `hparams`), so every field is settable as
`--config.<field>=`. Run i uses `jax.random.key(seed + i)`, i < num_seeds.

Variants (`--config=experiments/configs/qd_sparse.py:<variant>`): curling (the default), maze, arm,
ant, smoke, and es_sweep (Curling, OpenAI-ES only, tuning seeds 100-101: experiments/qd_es_sweep.py's
default). The paper budget is 5e5 evaluations with population 100; these CPU variants use 1e4
evaluations (maze 5e3). Since issue 19 curling, arm and maze follow the authors' code (GPaolo/SERENE,
STAX): SERENE / STAX's emitters as populations (`serene_variant="authors"`), 5 random offspring
into the NS archive per generation (`archive_strategy="random"`), the papers' controllers (arm and
maze: 2 hidden layers of 5; Curling: 3 of 5) and the maze's 2000-step episodes at the env's own wheel
speed. curling_v1, arm_v1 and maze_v1 are the configurations before issue 19 (lfx's emitters,
most novel offspring archived, one hidden layer of 16 for arm and maze, the maze at 500 steps with
four times the wheel speed): the rows "before issue 19" of docs/results/qd.md.
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


# lfx before issue 19 (docs/results/qd.md's rows "before issue 19")
BEFORE_ISSUE_19 = dict(archive_strategy="novel", serene_variant="lfx_v1")

VARIANTS = {
    # the paper's Curling controller: 3 hidden layers of 5
    "curling": lambda: _config(ComparisonConfig(env="Curling-sparse", hidden=(5, 5, 5))),
    # the papers' arm and maze controllers: 2 hidden layers of 5; the maze at 2000 steps
    "arm": lambda: _config(ComparisonConfig(env="RedundantArm-sparse", hidden=(5, 5))),
    "maze": lambda: _config(ComparisonConfig(env="HardMaze-sparse", hidden=(5, 5), budget=5_000)),
    "curling_v1": lambda: _config(ComparisonConfig(env="Curling-sparse", hidden=(5, 5, 5),
                                                   **BEFORE_ISSUE_19)),
    "arm_v1": lambda: _config(ComparisonConfig(env="RedundantArm-sparse", **BEFORE_ISSUE_19)),
    "maze_v1": lambda: _config(ComparisonConfig(
        env="HardMaze-sparse", budget=5_000,
        env_kwargs=(("max_speed", 0.008), ("max_steps_in_episode", 500)), **BEFORE_ISSUE_19)),
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
