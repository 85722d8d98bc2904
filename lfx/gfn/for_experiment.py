"""The configs of the Flow of Reasoning experiments (experiments/gfn_for_{game24,blocksworld}.py).

Flat fields, as the documented commands set them (`--config.num_iterations=6000`,
`"--config.methods=('for','tb','ppo')"`). `lfx.gfn.for_train.method_setup(config, method)` turns
one into each compared method's `FoRConfig` and traced `FoRHParams`. Seed i is
`jax.random.key(i)`; its evaluation keys are `key(1000 + i)` (training problems) and
`key(2000 + i)` (held-out problems), as in the recorded results.
"""

from __future__ import annotations

import dataclasses

from lfx.experiment import RunConfig
from lfx.experiment.config import ConfigError
from lfx.gfn.for_train import COMPARED_METHODS, method_setup


@dataclasses.dataclass(frozen=True)
class FoRComparison:
    """Fields both FoR experiments share.

    methods: names of `COMPARED_METHODS`; seeds: runs per method; vmap_seeds: all seeds of a
    method in one vmapped run (else one run per seed, one after another); n_samples: on-policy
    samples per problem in the evaluation; for_*: the FoR recipe's settings; the floats (lr,
    epsilon, ...) become each method's traced `FoRHParams`. chunk_size, checkpoint_every,
    keep_checkpoints: the harness's.
    """

    methods: tuple = ("for", "tb", "ppo", "reinforce")
    seeds: int = 5
    vmap_seeds: bool = True
    batch_size: int = 64
    num_iterations: int = 1500
    hidden: tuple = (128, 128)
    lr: float = 1e-3
    epsilon: float = 0.05
    baseline_decay: float = 0.95
    n_samples: int = 40
    for_samples_per_problem: int = 4
    for_replay_capacity: int = 64
    for_replay_per_problem: int = 4
    for_reward_beta: float = 2.0
    for_local_search: str = "best"  # FoR's code; "every" = lfx's first version (see lfx.gfn.for_train)
    for_local_search_restarts: int = 16
    for_local_search_proposal: str = "uniform"  # FoR's code; or "policy"
    ppo_epochs: int = 4
    ppo_minibatches: int = 4
    clip_eps: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    chunk_size: int = 250
    checkpoint_every: int = 500
    keep_checkpoints: int = 2

    def run_config(self) -> RunConfig:
        return RunConfig(seed=0, num_seeds=self.seeds if self.vmap_seeds else 1,
                         chunk_size=self.chunk_size, checkpoint_every=self.checkpoint_every,
                         keep_checkpoints=self.keep_checkpoints)

    def validate_methods(self) -> None:
        """Refuses what cannot run (names, ranges, each method's config) before anything trains."""
        if not self.methods:
            raise ConfigError(f"config.methods is empty; choose from {COMPARED_METHODS}.")
        bad = [m for m in self.methods if m not in COMPARED_METHODS]
        if bad:
            raise ConfigError(f"config.methods: unknown {bad}; choose from {COMPARED_METHODS}, e.g. "
                              f"\"--config.methods=('for','tb')\".")
        if len(set(self.methods)) != len(self.methods):
            raise ConfigError(f"config.methods names a method twice: {self.methods}.")
        for name in ("seeds", "n_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"config.{name} must be >= 1, got {getattr(self, name)}.")
        self.run_config().validate()
        for m in self.methods:
            cfg, hp = method_setup(self, m)
            try:
                cfg.validate()
                hp.validate()
            except ValueError as err:
                raise ConfigError(f"method {m!r}: {err}".replace("config.hparams.", "config.")) from None


@dataclasses.dataclass(frozen=True)
class Game24Problems:
    """Game24: `num_train` training and `num_test` held-out solvable puzzles drawn with puzzle_seed."""

    num_train: int = 15  # the paper trains from about 15 examples
    num_test: int = 20
    puzzle_seed: int = 0
    failure_reward: float = 1e-3  # FoR's code; lfx's first version (the documented 2026-11 runs): 0.01

    def validate(self) -> None:
        if self.num_train < 1 or self.num_test < 1:
            raise ConfigError("config.num_train and config.num_test must be >= 1.")
        if not self.failure_reward > 0:
            raise ConfigError(f"config.failure_reward must be > 0 (log R finite); got {self.failure_reward}.")


@dataclasses.dataclass(frozen=True)
class BlocksworldProblems:
    """BlocksWorld: problems of `plan_length` optimal steps with `num_blocks` blocks, step limit
    plan_length + slack (<= max_limit), drawn with problem_seed."""

    num_blocks: int = 4
    max_limit: int = 8
    plan_length: int = 6
    slack: int = 0
    num_train: int = 15  # the paper trains from about 15 examples
    num_test: int = 30
    problem_seed: int = 0
    # R = 100 if solved, else 10 x facts met / facts + failure_reward; plus step_reward x step limit.
    # FoR's code: failure 0, step 1; lfx's first version (the documented 2026-11 runs): 0.01 and 0.
    failure_reward: float = 0.0
    step_reward: float = 1.0

    def validate(self) -> None:
        if self.num_train < 1 or self.num_test < 1:
            raise ConfigError("config.num_train and config.num_test must be >= 1.")
        if self.failure_reward < 0 or self.step_reward < 0:
            raise ConfigError("config.failure_reward and config.step_reward must be >= 0.")
        if not (self.failure_reward > 0 or self.step_reward > 0):
            raise ConfigError("set config.failure_reward > 0 or config.step_reward > 0: a failed plan with no "
                              "goal fact met would have R = 0.")
        if self.plan_length + self.slack > self.max_limit:
            raise ConfigError(f"plan_length + slack = {self.plan_length + self.slack} exceeds "
                              f"max_limit={self.max_limit}; raise config.max_limit or lower "
                              f"config.slack.")


def train_method(recipe, hp, comparison: FoRComparison, path: str, fingerprint: dict, *,
                 resume: bool = False, progress: bool = True, stop_after: int | None = None):
    """Trains one method's `FoRRecipe` for every seed as harness run(s) under `path`.

    vmap_seeds: one run in `path/` over all seeds; else one run per seed in `path/seed_<i>/`.
    Returns (per-seed params list, training success [seeds, num_iterations]) or None when
    `stop_after` stopped a run early.
    """
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from lfx.experiment import stack_hparams  # noqa: PLC0415
    from lfx.gfn.experiment import run_recipe  # noqa: PLC0415

    run_cfg = comparison.run_config()
    groups = ([(path, list(range(comparison.seeds)))] if comparison.vmap_seeds else
              [(f"{path}/seed_{i}", [i]) for i in range(comparison.seeds)])
    params, success = [], []
    for folder, seeds in groups:
        keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
        state, metrics, complete = run_recipe(
            recipe, keys, stack_hparams([hp]), folder, {**fingerprint, "seeds": seeds}, run_cfg,
            resume=resume, progress=progress, stop_after=stop_after,
            progress_metric="train/success")
        if not complete:
            return None
        params += [jax.tree.map(lambda x, j=j: x[0, j], state.params) for j in range(len(seeds))]
        success.append(np.asarray(metrics["train/success"][0]))
    return params, np.concatenate(success)
