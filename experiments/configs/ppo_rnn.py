"""Configs for experiments/ppo_rnn.py: `--config=experiments/configs/ppo_rnn.py:<variant>`.

Derived from the dataclasses (`lfx.rl.ppo_rnn.RecurrentPPOConfig` and `lfx.experiment.RunConfig` at the
top level, `lfx.rl.ppo_rnn.HParams` = `lfx.rl.ppo.HParams` under `hparams`), so every field is settable
as `--config.<field>=`.

Recurrent PPO variants (PureJaxRL's `ppo_rnn.py` settings: 4 envs x 128 steps, 4 epochs, 4 minibatches of
whole env sequences, lr 2.5e-4 annealed, GRU 128):

* cartpole: CartPole-v1, PureJaxRL's config as it is (the default).
* memory_chain: bsuite MemoryChain (`memory_length` 5, gymnax's default; 100k steps, 5 seeds, greedy
  evaluation of 64 episodes every 10 updates).
* cartpole_masked: CartPole-v1 without velocities, `obs_mask=(0, 2)` (x, theta); 32 envs x 16 steps
  (the same 512 steps per update, faster on CPU), lr 1e-3 (at 2.5e-4 neither the recurrent nor the
  feed-forward agent passes a return of ~50 in 300k steps: docs/results/ppo_rnn.md), 300k steps, 5 seeds.

Feed-forward baselines for `experiments/ppo.py` (`lfx.rl.ppo.PPOConfig`, PureJaxRL's CartPole settings,
the same env, steps and seeds): `ff_memory_chain`. PPOConfig has no observation
mask, so CartPole without velocities has no ppo.py variant; its feed-forward baseline is this recipe with
`--config.memory=False` (the hidden state reset every step: the same network, memoryless).
"""

from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.rl import ppo, ppo_rnn

RUN = RunConfig(num_seeds=5, chunk_size=10, checkpoint_every=0)


def _config(static, run: RunConfig = RunConfig(), **hparams):
    return to_configdict(static, run, hparams=ppo_rnn.HParams(**hparams))


def _memory_chain(length: int, steps: int, cls=ppo_rnn.RecurrentPPOConfig):
    static = cls(env_name="MemoryChain-bsuite", env_kwargs=(("memory_length", length),), total_timesteps=steps,
                 eval_every=10, eval_episodes=64, eval_max_steps=length + 1)  # an episode is length + 1 steps
    return _config(static, RUN)


VARIANTS = {
    "cartpole": lambda: _config(ppo_rnn.RecurrentPPOConfig()),
    "memory_chain": lambda: _memory_chain(5, 100_000),
    "cartpole_masked": lambda: _config(
        ppo_rnn.RecurrentPPOConfig(obs_mask=(0, 2), num_envs=32, num_steps=16, total_timesteps=300_000,
                                   eval_every=10), RUN, lr=1e-3),
    "ff_memory_chain": lambda: _memory_chain(5, 100_000, ppo.PPOConfig),
}


def get_config(variant: str = "cartpole"):
    return variant_config(VARIANTS, variant, "ppo_rnn")
