"""Train an offline-RL algorithm on a generated dataset, several seeds (and a hyperparameter grid) in one call.

    python experiments/offline_datasets.py --workdir=datasets/pendulum               # once: the datasets
    python experiments/offline.py                                                    # TD3+BC, pendulum medium
    python experiments/offline.py --config=experiments/configs/offline.py:iql_medium_replay
    python experiments/offline.py --config=experiments/configs/offline.py:cql --sweep="cql_alpha=1,5,10"
    python experiments/offline.py --workdir=runs/offline_td3bc --resume              # continue a killed run

Writes `<workdir>/metrics.jsonl|csv`, `summary.json` (final greedy return and D4RL-normalised score
per setting, with the dataset's metadata), `learning_curve.png` and checkpoints (the body is
`lfx/rl/main.py`, shared by every RL recipe script). The dataset is checked against the config's env
before anything compiles.
"""

from __future__ import annotations

from lfx import envs
from lfx.experiment import cli
from lfx.offline import dataset as ds
from lfx.offline import recipe
from lfx.rl.main import main_for

FLAGS = cli.define_flags("offline.py:td3_bc", sweep=True)


def main(argv):
    del argv
    config = cli.get_config()
    module = recipe.family(config.algorithm)
    if not config.dataset:
        raise ValueError("config.dataset is empty; set --config.dataset=<dir>/<env>-<level>.")
    data, meta = ds.load(config.dataset, generate_hint=(
        "python experiments/offline_datasets.py --workdir=" + config.dataset.rsplit("/", 1)[0]))
    static = recipe.OfflineConfig(algorithm=config.algorithm, env_name=config.env_name,
                                  env_kwargs=tuple(sorted(dict(config.env_kwargs).items())))
    spec = recipe.env_spec(*envs.make(static.env_name, **dict(static.env_kwargs)))[0]
    recipe.check_dataset(spec, static, data, meta)
    ref = (meta["ref_min_return"], meta["ref_max_return"])
    main_for(module, config.algorithm, FLAGS, args=(ds.to_batches(data),), curve_metric="eval/episode_return",
             score=lambda r: ds.normalized_score(r, *ref), steps_name="gradient_steps",
             info={"dataset": config.dataset, "dataset_metadata": {k: v for k, v in meta.items()
                                                                   if k not in ("sac_config", "sac_hparams")}})


if __name__ == "__main__":
    cli.run(main)
