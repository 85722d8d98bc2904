"""Configs for experiments/sac.py: `--config=experiments/configs/sac.py:<variant>`.

Derived from the dataclasses (`lfx.rl.sac.SACConfig`, `lfx.experiment.RunConfig` at the top level,
`lfx.rl.sac.HParams` under `hparams`), so every field is settable as `--config.<field>=`.

Variants: pendulum (gymnax Pendulum-v1 at a CPU budget, the default: 4 envs, 4 gradient steps per
update = 1 per env step, 256-256 ReLU networks, 20k steps, 5 seeds); hopper, walker2d (brax's own
SAC settings, spring backend, needs the brax extra; accelerator-scale: millions of gradient steps
of batch 512); halfcheetah (hopper's settings with reward scale 1: brax's notebook trains
halfcheetah with PPO only).

Brax's SAC settings are those of brax's training notebook (`sac.train(...)` per env). Translation:
brax takes one step of `num_envs` envs then `grad_updates_per_step` gradient steps, so lfx's
`num_steps = 1`, `gradient_steps = grad_updates_per_step`; `max_replay_size` -> `buffer_size`;
`min_replay_size` -> `learning_starts` (brax fills it with the initial policy's actions, lfx with
uniform random ones); `discounting` -> `gamma`; `reward_scaling` -> `reward_scale`; brax's target
entropy -0.5 |A| -> `target_entropy_scale = 0.5`; networks 256-256 ReLU, tau 0.005, alpha_0 = 1.
"""

from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.rl import sac

# An update is a few env steps: chunks of 250 updates (one evaluation each), checkpoints every 1250.
RUN = RunConfig(num_seeds=5, chunk_size=250, checkpoint_every=1250)


def _config(static: sac.SACConfig, run: RunConfig = RUN, **hparams):
    return to_configdict(static, run, hparams=sac.HParams(**hparams))


def _brax(name: str):
    static, hparams = sac.brax_settings(name)
    run = RunConfig(num_seeds=5, chunk_size=2560, checkpoint_every=2560)
    return to_configdict(static, run, hparams=hparams)


VARIANTS = {
    "pendulum": lambda: _config(sac.SACConfig(eval_every=250)),
    **{name: (lambda n=name: _brax(n)) for name in sac.BRAX_SAC},
}


def get_config(variant: str = "pendulum"):
    return variant_config(VARIANTS, variant, "sac")
