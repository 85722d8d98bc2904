"""Configs for experiments/rlhf.py: `--config=experiments/configs/rlhf.py:<variant>`.

Derived from `lfx.pref.rlhf.RLHFConfig`, `lfx.pref.data.TaskSpec` and `lfx.experiment.RunConfig` at
the top level and the traced `HParams` under `hparams`.

Variants (task (a), experiments/pref_task.py; 300 updates of 16 prompts x 4 samples = 64
responses per update, full fine-tuning, lr 1e-3, an evaluation every 50 updates, 5 seeds):
  grpo       GRPO, KL in the loss (kl_coef = beta 0.05).
  rloo       RLOO, KL in the reward (TRL's RLOOTrainer), one gradient step per batch.
  ppo        PPO with a value head, GAE(1, 0.95), 2 epochs x 2 minibatches per batch.
  ppo_fine   PPO with fine-grained rewards: each 3-word segment's share of the reward paid at
             its end (segment_len 3) instead of the whole reward at the last word.
  rto        PPO with RTO's token rewards: pass the DPO policy, --config.token_model=<a
             policy_0.npz of experiments/pref.py --save_policy>.
  ppo_rm     PPO on a learned reward model's scores (pass --config.reward_model=<a
             reward_model.npz of experiments/pref_reward_model.py>), evaluated on the true reward.
  pf_ppo_bw, pf_ppo_br, pf_ppo_bon   ppo_rm with PF-PPO's filtration of each prompt's 4 samples:
             best + worst, best + random, best only (the update trains on 32, 32, 16 of the 64).
  grpo_arithmetic   RLVR: GRPO on the arithmetic task (experiments/rlhf_task.py; exact-match
             verifier), 200 updates of 16 prompts x 8 samples, responses of <= 8 tokens, beta 0.04
             (DeepSeekMath's), 8 evaluation samples per held-out prompt (eval/pass@n = pass@8).
  sft_sharpening_arithmetic   SFT-sharpening: each update, the best of 8 samples of pi_ref by
             log pi_ref(y | x) for 16 prompts, imitated (next-token NLL); evaluated by the verifier.
  rlhf_sharpening_arithmetic  RLHF-sharpening: GRPO on r = log pi_ref(y | x), beta 0.04.
  *_tiny     test size on datasets/pref/lexicon_tiny (datasets/rlhf/arithmetic_tiny).
"""

import dataclasses

from lfx.experiment import RunConfig, to_configdict
from lfx.experiment.config import variant_config
from lfx.pref.data import TaskSpec
from lfx.pref.rlhf import HParams, RLHFConfig

BASE = RLHFConfig(num_updates=300, prompts_per_update=16, samples_per_prompt=4, eval_every=50)
CONFIGS = {"grpo": BASE, "rloo": dataclasses.replace(BASE, estimator="rloo"),
           "ppo": dataclasses.replace(BASE, estimator="ppo", ppo_epochs=2, num_minibatches=2)}
CONFIGS["rto"] = dataclasses.replace(CONFIGS["ppo"], token_reward="rto")
CONFIGS["ppo_fine"] = dataclasses.replace(CONFIGS["ppo"], segment_len=3)
CONFIGS["ppo_rm"] = dataclasses.replace(CONFIGS["ppo"], reward="reward_model",
                                        true_reward="lexicon")
CONFIGS.update({f"pf_ppo_{short}": dataclasses.replace(CONFIGS["ppo_rm"], rollout_filter=name)
                for short, name in (("bw", "best_worst"), ("br", "best_random"))})
CONFIGS["pf_ppo_bon"] = dataclasses.replace(CONFIGS["ppo_rm"], rollout_filter="best_of_n",
                                            num_minibatches=1)
RUN = RunConfig(num_seeds=5, chunk_size=50, checkpoint_every=100)
TINY_RUN = RunConfig(num_seeds=2, chunk_size=10, checkpoint_every=10)


def _tiny(config):
    return dataclasses.replace(config, num_updates=20, prompts_per_update=4, eval_every=10)


ARITHMETIC = dataclasses.replace(BASE, reward="arithmetic", num_updates=200, samples_per_prompt=8,
                                 response_len=8, eval_samples=8)
VARIANTS = {name: (lambda c=c: to_configdict(c, TaskSpec(), RUN, hparams=HParams()))
            for name, c in CONFIGS.items()}
VARIANTS.update({f"{name}_tiny": (lambda c=c: to_configdict(
    _tiny(c), TaskSpec(task="datasets/pref/lexicon_tiny"), TINY_RUN, hparams=HParams()))
    for name, c in CONFIGS.items()})
VARIANTS["grpo_arithmetic"] = lambda: to_configdict(
    ARITHMETIC, TaskSpec(task="datasets/rlhf/arithmetic"), RUN, hparams=HParams(kl_coef=0.04))
SHARPEN = dataclasses.replace(ARITHMETIC, reward="reference_likelihood", true_reward="arithmetic")
VARIANTS["sft_sharpening_arithmetic"] = lambda: to_configdict(
    dataclasses.replace(SHARPEN, estimator="sft", rollout_filter="best_of_n",
                        sample_from_reference=True),
    TaskSpec(task="datasets/rlhf/arithmetic"), RUN, hparams=HParams())
VARIANTS["rlhf_sharpening_arithmetic"] = lambda: to_configdict(
    SHARPEN, TaskSpec(task="datasets/rlhf/arithmetic"), RUN, hparams=HParams(kl_coef=0.04))
VARIANTS["grpo_arithmetic_tiny"] = lambda: to_configdict(
    dataclasses.replace(_tiny(ARITHMETIC), eval_samples=2),
    TaskSpec(task="datasets/rlhf/arithmetic_tiny"), TINY_RUN, hparams=HParams(kl_coef=0.04))


def get_config(variant: str = "grpo"):
    return variant_config(VARIANTS, variant, "rlhf")
