"""Configs for experiments/cpl_env.py: `--config=experiments/configs/cpl_env.py:<variant>`.

Derived from `lfx.pref.cpl.CPLConfig`, `lfx.pref.cpl_segments.PreferenceConfig` and
`lfx.experiment.RunConfig` at the top level and CPL's traced HParams under `hparams`, so every field
is settable as `--config.<field>=` (`objective` is set by the script: it trains both CPL and SFT).

Variants:
  pendulum          2500 pairs of 64-step segments of the Pendulum medium dataset labelled by the
                    SAC oracle's summed advantage (the paper's dense labels), CPL vs SFT.
  pendulum_reward   the same pairs labelled by segment reward sums.

CPU budget (2 cores, about a minute per objective for 5 seeds): a (64, 64) actor, batch 32 pairs,
3000 gradient steps of which 1000 BC pretraining (the authors' 40% share: 200k of 500k), warmup 100,
lr 3e-4, an evaluation (10 episodes) every 500 steps. The authors' MetaWorld values (alpha 0.1,
lam 0.5, lr 1e-4, batch 96, (512, 512), 500k steps, 10k warmup) are the defaults of `CPLConfig` /
`HParams`; alpha and lam are kept here.
"""

from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.pref import cpl
from lfx.pref.cpl_segments import PreferenceConfig

RUN = RunConfig(num_seeds=5, chunk_size=10, checkpoint_every=10)
STATIC = cpl.CPLConfig(segment_length=64, batch_size=32, total_gradient_steps=3000, gradient_steps=100,
                       bc_steps=1000, warmup_steps=100, hidden_sizes=(64, 64), eval_every=5, eval_episodes=10)


def _pendulum(oracle: str):
    return to_configdict(STATIC, PreferenceConfig(oracle=oracle), RUN, hparams=cpl.HParams(lr=3e-4))


VARIANTS = {
    "pendulum": lambda: _pendulum("sac"),
    "pendulum_reward": lambda: _pendulum("reward"),
}


def get_config(variant: str = "pendulum"):
    return variant_config(VARIANTS, variant, "cpl_env")
