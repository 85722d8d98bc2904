"""Online RL for a language model: rollout -> reward -> advantages -> PPO/GRPO/RLOO update, one jit.

Each update samples G responses to each of M prompts from the policy inside the jitted step (the
KV-cache decoder `lfx.lm.generate`, temperature `config.temperature`, stopping at eos), scores them
with the task's reward (`lfx.pref.prompts.REWARDS[config.reward]`: a verifier or an exact reward),
computes advantages and takes `ppo_epochs x num_minibatches` Adam steps on the clipped surrogate

    ratio_t = pi(y_t | x, y_<t) / pi_old(y_t | x, y_<t)
    l_t     = max(-A_t ratio_t, -A_t clip(ratio_t, 1 - eps, 1 + eps))

with the estimator `config.estimator`:

    "ppo"   (Ouyang et al. 2022; TRL `PPOTrainer`) token rewards r_t = -c (log pi_old_t - log pi_ref_t)
            + s [last token] (+ RTO's token rewards, below), GAE(gamma, lambda) with a value head
            V_t = w . RMSNorm(h_t) + b on the policy's final hidden state (TRL < 0.12's
            AutoModelForCausalLMWithValueHead), advantages whitened over the batch, loss
            token_mean(l) + vf_coef 0.5 token_mean(max((V - R)^2, (V_clipped - R)^2)).
    "grpo"  (Shao et al. 2024, DeepSeekMath, arXiv:2402.03300; TRL `GRPOTrainer`) A_i = (s_i -
            mean_G s) / (std_G s + 1e-4) for every token of response i; the KL is in the loss,
            l_t + c k3_t with k3 = exp(log pi_ref - log pi) - (log pi_ref - log pi) - 1, averaged per
            sequence then over the batch ("sequence_mean").
    "rloo"  (Ahmadian et al. 2024, arXiv:2402.14740; TRL `RLOOTrainer`) R_i = s_i - c (log pi_old(y_i)
            - log pi_ref(y_i)), A_i = R_i - mean_{j != i} R_j, the ratio taken on the whole sequence,
            ratio_i = pi(y_i | x) / pi_old(y_i | x).
    "sft"   (RAFT / rejection-sampling fine-tuning) no advantage: the next-token NLL of the kept
            samples, -token_mean(log pi(y_t | ...)), with `rollout_filter="best_of_n"`.

Sharpening (Huang et al. 2024, "Self-Improvement in Language Models: The Sharpening Mechanism",
arXiv:2412.01951) uses the base model as its own verifier, reward "reference_likelihood"
r(x, y) = log pi_ref(y | x): SFT-sharpening is "sft" on the best of G samples of pi_ref
(`sample_from_reference=True`: the amortised best-of-N), RLHF-sharpening any estimator on that
reward with its KL penalty.

The reward may be a learned proxy (reward "reward_model", `lfx.pref.reward_model`'s EXRM) while
evaluation reports the task's true reward (`true_reward`); PF-PPO's policy filtration (Shen et al.
2024, "Policy Filtration in RLHF to Fine-Tune LLM for Code Generation", arXiv:2409.06957) then
keeps, of each prompt's G samples, those whose proxy reward is most trustworthy -- the best
("best_of_n"), the best and a random other ("best_random", BR), or the best and the worst
("best_worst", BW) -- and the update trains on those only (`rollout_filter`).

With `segment_len = s > 0` PPO's reward is fine-grained (Wu et al. 2023, "Fine-Grained Human
Feedback Gives Better Rewards for Language Model Training", arXiv:2306.01693): each segment of s
tokens is paid its share of the reward at its end (the reward's per-token credit, summed) instead
of the whole reward at the last token; the total is the same.

With `token_reward="rto"` (Zhong et al. 2024, "DPO Meets PPO: Reinforced Token Optimization",
arXiv:2404.18922), PPO's token rewards gain clip(beta_rto (log pi_dpo_t - log pi_ref_t), +-rto_clip),
DPO's implicit reward per token, from a DPO-trained policy carried in `PromptData.token_model`.
As in TRL, log-probabilities in the update (policy, old policy and reference) are of the logits
divided by the sampling temperature; where the task samples under a token automaton
(`PromptData.fsm`) they are those of the constrained sampler (`sequence.constrained_logits`:
otherwise a policy lowers its KL penalty by moving mass onto tokens it can never emit).

    recipe = make_train(RLHFConfig(model=model, estimator="grpo", reward="arithmetic"))
    state, metrics = recipe.train(key, HParams(kl_coef=0.04), reference, data)   # data: PromptData
    sweep = jax.jit(jax.vmap(recipe.train, (0, None, None, None)))               # over seeds

Evaluation (inside the same jitted call, every `eval_every` updates) samples one response per
evaluation prompt at temperature 1 from the policy and from the reference, as the offline
preference recipe does (`lfx.pref.recipe`): eval/reward, eval/reference_reward, eval/kl,
eval/win_rate, eval/entropy, and eval/greedy_reward (greedy decoding); with eval_samples = n > 1
also eval/pass@n, the mean over prompts of the best reward of n samples (pass@n for a 0/1
verifier).

Shapes: M prompts x G samples = B rollouts; P prompt columns (left-padded), K = response_len; a
response row is the prompt followed by K columns, its tokens then eos (when it stopped before K),
then padding; m [B, K] marks the scored tokens (eos included).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from lfx.experiment.checks import NON_NEGATIVE, POSITIVE, UNIT, check_ranges
from lfx.lm.config import LlamaConfig
from lfx.lm.generate import generate
from lfx.lm.io import load_lm
from lfx.lm.llama import output_logits, rms_norm
from lfx.lm.lora import lora_init
from lfx.lm.train import make_optimizer, target_hidden
from lfx.pref import advantages as adv
from lfx.pref import prompts as prompt_lib
from lfx.pref import recipe as pref_recipe
from lfx.pref import reward_model
from lfx.pref.prompts import EOS_ID, PromptData, PromptSet, response_rows
from lfx.pref.sequence import constrained_logits, sequence_logps
from lfx.rl import loop

ESTIMATORS = ("ppo", "grpo", "rloo", "sft")
MODEL_REWARDS = ("reference_likelihood",)  # computed from the reference's log-probs (sharpening)
TOKEN_REWARDS = ("none", "rto")
FILTERS = {"none": 0, "best_of_n": 1, "best_random": 2, "best_worst": 2}  # samples kept (0: all)
DEFAULT_AGGREGATION = {"ppo": "token_mean", "grpo": "sequence_mean", "rloo": "sequence_sum",
                       "sft": "token_mean"}


@dataclasses.dataclass(frozen=True)
class RLHFConfig:
    """Static settings of an online RLHF run (the policy fields mean what they mean in
    `recipe.PrefConfig`).

    estimator: "ppo", "grpo" or "rloo" (the module doc).
    reward: the reward trained on, a name in `lfx.pref.prompts.REWARDS`.
    true_reward: the task's own reward, which evaluation reports and whose task is loaded ("": the
      same as `reward`; set it when `reward` is a learned proxy such as "reward_model").
    rollout_filter: PF-PPO's policy filtration (Shen et al. 2024, arXiv:2409.06957) of each
      prompt's G samples by their reward before the update: "none", "best_of_n" (keep the best),
      "best_random" (the best and one of the others at random, BR), "best_worst" (BW).
    prompts_per_update: M prompts drawn uniformly with replacement per update.
    samples_per_prompt: G responses per prompt (>= 2 for GRPO's and RLOO's baselines).
    response_len: K, the most tokens a response has (eos included when it stops earlier).
    temperature: of the rollouts (> 0).
    ppo_epochs, num_minibatches: optimisation passes over each rollout batch and minibatches per
      pass (TRL's num_ppo_epochs 4 / num_mini_batches 1; GRPO's num_iterations 1).
    aggregation: "" (the estimator's: ppo token_mean, grpo sequence_mean, rloo sequence_sum) or an
      `advantages.AGGREGATIONS` name (PPO and GRPO; RLOO's ratio is per sequence).
    whiten_advantages: PPO's advantage whitening over the batch (TRL: always).
    token_reward: "none" or "rto" (PPO only; needs `PromptData.token_model`).
    segment_len: 0 (the reward at the response's last token: holistic) or s > 0: PPO's reward
      paid per segment of s tokens (fine-grained; the reward's per-token credit summed over each
      segment, `advantages.segment_rewards`; needs a reward with a `token_fn`).
    sample_from_reference: sample the rollouts from pi_ref instead of the policy ("sft" only:
      SFT-sharpening's fixed best-of-N data).
    eval_samples: n samples per evaluation prompt for eval/pass@n (1: no pass@n).
    """

    model: LlamaConfig | None = None
    estimator: str = "grpo"
    reward: str = "lexicon"
    true_reward: str = ""
    rollout_filter: str = "none"
    num_updates: int = 200
    prompts_per_update: int = 16
    samples_per_prompt: int = 4
    response_len: int = 12
    temperature: float = 1.0
    ppo_epochs: int = 1
    num_minibatches: int = 1
    aggregation: str = ""
    whiten_advantages: bool = True
    token_reward: str = "none"
    segment_len: int = 0
    sample_from_reference: bool = False
    lora_rank: int = 0
    lora_targets: tuple[str, ...] = ("wq", "wv")
    lora_scale: float = 1.0
    clip: float = 1.0
    eval_every: int = 50
    eval_samples: int = 1

    def validate(self) -> None:
        """`check_settings` and a model: refuses (ValueError) what cannot run."""
        self.check_settings()
        pref_recipe.check_model(self)

    def check_settings(self) -> None:
        """Everything but `model` (checked before a task is loaded)."""
        name = type(self).__name__
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"Unknown {name}.estimator {self.estimator!r}; choose from "
                             f"{ESTIMATORS}.")
        if self.reward not in MODEL_REWARDS:
            prompt_lib.get_reward(self.reward)
        elif not self.true_reward:
            raise ValueError(f"{name}.reward={self.reward!r} is the models' own likelihood: name "
                             f"the task's reward in true_reward (what evaluation reports).")
        if self.true_reward:
            prompt_lib.get_reward(self.true_reward)
        if self.rollout_filter not in FILTERS:
            raise ValueError(f"Unknown {name}.rollout_filter {self.rollout_filter!r}; choose from "
                             f"{tuple(FILTERS)}.")
        if self.rollout_filter != "none" and self.samples_per_prompt <= FILTERS[self.rollout_filter]:
            raise ValueError(f"{name}.rollout_filter={self.rollout_filter!r} keeps "
                             f"{FILTERS[self.rollout_filter]} of each prompt's samples: "
                             f"samples_per_prompt must exceed that, got {self.samples_per_prompt}.")
        if self.estimator in ("grpo", "rloo") and self.rollout_filter == "best_of_n":
            raise ValueError(f"{name}.rollout_filter='best_of_n' keeps one sample per prompt; "
                             f"{self.estimator}'s baseline needs two.")
        if self.estimator in ("grpo", "rloo") and self.samples_per_prompt < 2:
            raise ValueError(f"{name}.samples_per_prompt must be >= 2 for {self.estimator} (its "
                             f"baseline compares samples of one prompt), got "
                             f"{self.samples_per_prompt}.")
        for field in ("samples_per_prompt", "ppo_epochs", "num_minibatches", "eval_samples"):
            if getattr(self, field) < 1:
                raise ValueError(f"{name}.{field} must be >= 1, got {getattr(self, field)}.")
        if self.rollout_filter in FILTERS and self.trained_rollouts % self.num_minibatches:
            raise ValueError(f"{name}.num_minibatches={self.num_minibatches} must divide the "
                             f"{self.trained_rollouts} rollouts trained on per update "
                             f"(prompts_per_update x samples kept per prompt).")
        if not self.temperature > 0:
            raise ValueError(f"{name}.temperature must be > 0, got {self.temperature}.")
        if self.aggregation and self.aggregation not in adv.AGGREGATIONS:
            raise ValueError(f"Unknown {name}.aggregation {self.aggregation!r}; choose from "
                             f"{adv.AGGREGATIONS} (or '' for the estimator's own).")
        if self.aggregation and self.estimator == "rloo":
            raise ValueError(f"{name}.aggregation must be '' for rloo (its ratio is taken on the "
                             f"whole sequence).")
        if self.token_reward not in TOKEN_REWARDS:
            raise ValueError(f"Unknown {name}.token_reward {self.token_reward!r}; choose from "
                             f"{TOKEN_REWARDS}.")
        if self.segment_len < 0:
            raise ValueError(f"{name}.segment_len must be >= 0, got {self.segment_len}.")
        if self.segment_len and (self.estimator != "ppo" or self.reward in MODEL_REWARDS
                                 or prompt_lib.get_reward(self.reward).token_fn is None):
            raise ValueError(f"{name}.segment_len > 0 needs estimator='ppo' and a reward with "
                             f"per-token credit (a token_fn), got {self.estimator!r} / "
                             f"{self.reward!r}.")
        if self.sample_from_reference and self.estimator != "sft":
            raise ValueError(f"{name}.sample_from_reference needs estimator='sft' (the other "
                             f"estimators' ratios are on-policy).")
        if self.estimator == "sft" and self.rollout_filter == "none":
            raise ValueError(f"{name}.estimator='sft' imitates filtered samples: set "
                             f"rollout_filter (e.g. 'best_of_n').")
        if self.token_reward == "rto" and self.estimator != "ppo":
            raise ValueError(f"{name}.token_reward='rto' needs estimator='ppo' (RTO's token "
                             f"rewards are credited per token by GAE).")
        pref_recipe.check_policy_config(self)

    @property
    def kept_per_prompt(self) -> int:
        """Samples per prompt the update trains on (G, or what `rollout_filter` keeps)."""
        return FILTERS.get(self.rollout_filter) or self.samples_per_prompt

    @property
    def trained_rollouts(self) -> int:
        return self.prompts_per_update * self.kept_per_prompt

    @property
    def batch_size(self) -> int:  # `check_policy_config` checks it like the offline recipe's
        return self.prompts_per_update

    @property
    def loss_aggregation(self) -> str:
        return self.aggregation or DEFAULT_AGGREGATION[self.estimator]

    @property
    def eval_metrics(self) -> tuple[str, ...]:
        extra = ("eval/greedy_reward",) + (("eval/pass@n",) if self.eval_samples > 1 else ())
        return pref_recipe.EVAL_METRICS + extra


@struct.dataclass
class HParams:
    """Traced floats of an online RLHF run (a batch of these is a sweep).

    lr: Adam learning rate. kl_coef: c, the KL penalty's weight (in the reward for PPO and RLOO,
    in the loss for GRPO; TRL's kl_coef 0.05 / GRPO's beta 0.04). clip_eps: the ratio clip (0.2).
    vf_coef, vf_clip: PPO's value-loss weight and value clip (TRL 0.1 / 0.2). gamma, gae_lambda:
    PPO's GAE (TRL 1.0 / 0.95). rto_beta, rto_clip: RTO's beta_1 and clip c (the authors' 0.05 /
    0.05).
    """

    lr: float = 1e-3
    kl_coef: float = 0.05
    clip_eps: float = 0.2
    vf_coef: float = 0.1
    vf_clip: float = 0.2
    gamma: float = 1.0
    gae_lambda: float = 0.95
    rto_beta: float = 0.05
    rto_clip: float = 0.05

    def validate(self) -> None:
        """Raises ValueError for a concrete value out of range (skipped when traced)."""
        check_ranges(self, {"lr": POSITIVE, "kl_coef": NON_NEGATIVE, "clip_eps": POSITIVE,
                            "vf_coef": NON_NEGATIVE, "vf_clip": POSITIVE, "gamma": UNIT,
                            "gae_lambda": UNIT, "rto_beta": NON_NEGATIVE,
                            "rto_clip": POSITIVE})


@struct.dataclass
class RLHFState:
    trainable: dict  # {"policy": parameters or LoRA adapters[, "value": PPO's value head]}
    opt_state: Any
    key: jax.Array
    update_idx: jax.Array  # [] int32
    eval_return: dict  # the latest evaluation, config.eval_metrics -> []


class Rollout(NamedTuple):
    """A rollout batch, every field [B, K] except `scores` [B]."""

    tokens: jax.Array  # [B, P + K] prompt + response rows
    roles: jax.Array  # [B, P + K]
    mask: jax.Array  # response tokens (eos included)
    old_logp: jax.Array  # log pi_old(y_t | ...) (tempered), 0 off the response
    ref_logp: jax.Array
    advantages: jax.Array
    returns: jax.Array  # PPO's value targets (zeros otherwise)
    old_values: jax.Array  # PPO's values at sampling time (zeros otherwise)
    scores: jax.Array  # [B] the task's reward s


class RLHFRecipe(NamedTuple):
    config: RLHFConfig
    HParams: type
    init: Callable[..., RLHFState]  # (key, hparams, reference, data)
    update: Callable[..., tuple[RLHFState, dict]]
    run: Callable[..., tuple[RLHFState, dict]]  # (state, hparams, reference, data, *, num_updates)
    train: Callable[..., tuple[RLHFState, dict]]  # (key, hparams, reference, data)
    evaluate: Callable[..., tuple[RLHFState, dict]]
    policy: Callable[[RLHFState, dict], dict]
    num_updates: int
    eval_metrics: tuple[str, ...]


# ------------------------------------------------------------------------------ rows and sampling
def sample(params: dict, config: RLHFConfig, data: PromptData, prompts: PromptSet,
           key: jax.Array, *, temperature: float) -> tuple[jax.Array, jax.Array]:
    """Responses to `prompts` under `params`: (tokens int32 [B, K], lengths int32 [B]) as
    `lfx.lm.generate` returns them (eos excluded, padding after), obeying the task's FSM."""
    return generate(params, config.model, prompts.prompts, prompts.lengths, key=key,
                    max_new_tokens=config.response_len, temperature=temperature, fsm=data.fsm,
                    eos_id=EOS_ID)


def _outputs(params: dict, value_head: dict | None, tokens, roles, config: RLHFConfig,
             temperature: float, fsm=None):
    """Per-token log-probs [B, K] (tempered, of the FSM-constrained distribution) and PPO's
    values [B, K] (or None)."""
    h, targets, mask = target_hidden(params, config.model, tokens, roles,
                                     num_target=config.response_len)
    logits = constrained_logits(output_logits(params, config.model, h) / temperature, fsm,
                                targets, mask)
    logp = sequence_logps(logits, targets, mask).token
    values = None
    if value_head is not None:
        x = rms_norm(h, params["final_norm"], config.model.norm_eps).astype(jnp.float32)
        values = (x @ value_head["w"] + value_head["b"]) * mask
    return logp, values


def score(name: str, data: PromptData, rows: PromptSet, responses: jax.Array,
          lengths: jax.Array, config: RLHFConfig) -> jax.Array:
    """The reward `name` of responses [B, K] to `rows` [B]: float32 [B] (`lfx.pref.prompts`)."""
    if name in MODEL_REWARDS:
        raise ValueError(f"Reward {name!r} is computed from the models' log-probs inside the "
                         f"update; it cannot score an evaluation (set true_reward).")
    fn = prompt_lib.get_reward(name).fn
    return fn(data.reward_params[name], rows, responses, lengths, config.model).astype(jnp.float32)


# ----------------------------------------------------------------------------------- the recipe
def init_state(key: jax.Array, hparams: HParams, reference: dict, data: PromptData, *,
               config: RLHFConfig) -> RLHFState:
    check_data(config, data)
    key, k_lora = jax.random.split(key)
    policy = (lora_init(k_lora, reference, config.lora_rank, targets=config.lora_targets)
              if config.lora_rank else reference)
    trainable = {"policy": policy}
    if config.estimator == "ppo":
        trainable["value"] = {"w": jnp.zeros((config.model.dim,), jnp.float32),
                              "b": jnp.zeros((), jnp.float32)}
    zero = {name: jnp.float32(0.0) for name in config.eval_metrics}
    return RLHFState(trainable=trainable,
                     opt_state=make_optimizer(hparams.lr, config.clip).init(trainable), key=key,
                     update_idx=jnp.int32(0), eval_return=zero)


def collect(state: RLHFState, hparams: HParams, reference: dict, data: PromptData, *,
            config: RLHFConfig) -> tuple[RLHFState, Rollout, dict]:
    """Samples G responses to each of M prompts, scores them (and filters them, PF-PPO), computes
    the advantages; returns (state with the key advanced, the rollout batch, its metrics)."""
    key, k_idx, k_sample = jax.random.split(state.key, 3)
    M, G = config.prompts_per_update, config.samples_per_prompt
    idx = jax.random.randint(k_idx, (M,), 0, data.train.num_prompts)
    rows = data.train.rows(jnp.repeat(idx, G))
    policy = jax.lax.stop_gradient(pref_recipe.merged_policy(state.trainable, reference, config))
    sampler = reference if config.sample_from_reference else policy
    y, n = sample(sampler, config, data, rows, k_sample, temperature=config.temperature)
    if config.reward == "reference_likelihood":  # log pi_ref(y | x), at temperature 1
        tokens, roles, _ = response_rows(rows, y, n)
        scores = _outputs(reference, None, tokens, roles, config, 1.0, data.fsm)[0].sum(-1)
    else:
        scores = score(config.reward, data, rows, y, n, config)
    metrics = {"train/reward": jnp.mean(scores)}
    if config.true_reward:
        metrics["train/true_reward"] = jnp.mean(score(config.true_reward, data, rows, y, n,
                                                      config))
    if config.rollout_filter != "none":
        keep = filtered(scores.reshape(M, G), config.rollout_filter, jax.random.fold_in(k_idx, 1))
        rows, y, n, scores = jax.tree.map(lambda a: a[keep], (rows, y, n, scores))
        G = config.kept_per_prompt
    tokens, roles, mask = response_rows(rows, y, n)
    t = config.temperature
    old_logp, old_values = _outputs(policy, state.trainable.get("value"), tokens, roles, config, t,
                                    data.fsm)
    ref_logp, _ = _outputs(reference, None, tokens, roles, config, t, data.fsm)
    zeros = jnp.zeros_like(old_logp)
    if config.estimator == "ppo":
        old_values = jax.lax.stop_gradient(old_values)
        if config.segment_len:  # fine-grained: each segment's reward at its end, no final score
            token_fn = prompt_lib.get_reward(config.reward).token_fn
            credit = token_fn(data.reward_params[config.reward], rows, y, n, config.model)
            K = config.response_len
            credit = jnp.pad(credit, ((0, 0), (0, K - credit.shape[1])))
            rewards = adv.kl_penalised_token_rewards(jnp.zeros_like(scores), old_logp, ref_logp,
                                                     mask, hparams.kl_coef)
            rewards = rewards + adv.segment_rewards(credit, mask, config.segment_len)
        else:
            rewards = adv.kl_penalised_token_rewards(scores, old_logp, ref_logp, mask,
                                                     hparams.kl_coef)
        if config.token_reward == "rto":
            dpo_logp, _ = _outputs(data.token_model, None, tokens, roles, config, t, data.fsm)
            rewards = rewards + adv.rto_token_rewards(dpo_logp, ref_logp, mask,
                                                      beta=hparams.rto_beta, clip=hparams.rto_clip)
        a, returns = adv.token_gae(rewards, old_values, mask, gamma=hparams.gamma,
                                   lam=hparams.gae_lambda)
        if config.whiten_advantages:
            a = adv.masked_whiten(a, mask)
    elif config.estimator == "grpo":
        a = adv.group_relative_advantages(scores.reshape(M, G)).reshape(-1)[:, None] * mask
        returns, old_values = zeros, zeros
    elif config.estimator == "sft":
        a, returns, old_values = zeros, zeros, zeros
    else:  # rloo
        kl = jnp.sum(old_logp - ref_logp, -1)
        a = adv.leave_one_out_advantages((scores - hparams.kl_coef * kl).reshape(M, G))
        a = a.reshape(-1)[:, None] * mask
        returns, old_values = zeros, zeros
    batch = Rollout(tokens=tokens, roles=roles, mask=mask, old_logp=old_logp, ref_logp=ref_logp,
                    advantages=jax.lax.stop_gradient(a), returns=returns, old_values=old_values,
                    scores=scores)
    return state.replace(key=key), batch, metrics


def filtered(scores: jax.Array, how: str, key: jax.Array) -> jax.Array:
    """Flat indices [M * kept] of the samples PF-PPO keeps from scores [M, G] (the module doc's
    `rollout_filter`): the best first, then the worst or a uniformly drawn other sample."""
    M, G = scores.shape
    best = jnp.argmax(scores, -1)
    if how == "best_of_n":
        cols = best[:, None]
    elif how == "best_worst":
        cols = jnp.stack([best, jnp.argmin(scores, -1)], -1)
    elif how == "best_random":
        other = jax.random.randint(key, (M,), 0, G - 1)
        cols = jnp.stack([best, other + (other >= best)], -1)
    else:
        raise ValueError(f"Unknown rollout_filter {how!r}.")
    return (jnp.arange(M)[:, None] * G + cols).reshape(-1)


def loss_fn(trainable: dict, hparams: HParams, reference: dict, batch: Rollout, fsm=None, *,
            config: RLHFConfig) -> tuple[jax.Array, dict]:
    """The estimator's loss on a (mini)batch of rollouts (the module doc); `fsm` the task's
    sampling constraint (`PromptData.fsm`)."""
    policy = pref_recipe.merged_policy(trainable, reference, config)
    logp, values = _outputs(policy, trainable.get("value"), batch.tokens, batch.roles, config,
                            config.temperature, fsm)
    m, A, eps = batch.mask, batch.advantages, hparams.clip_eps
    log_ratio = (logp - batch.old_logp) * m
    metrics = {}
    if config.estimator == "sft":
        loss = adv.aggregate(-logp, m, config.loss_aggregation)
        clipped = jnp.float32(0.0)
    elif config.estimator == "rloo":
        ratio = jnp.exp(log_ratio.sum(-1))
        A_seq = A[:, 0]
        pg = jnp.maximum(-A_seq * ratio, -A_seq * jnp.clip(ratio, 1 - eps, 1 + eps))
        loss = jnp.mean(pg)
        clipped = jnp.mean((jnp.abs(ratio - 1) > eps).astype(jnp.float32))
    else:
        ratio = jnp.exp(log_ratio)
        per_token = jnp.maximum(-A * ratio, -A * jnp.clip(ratio, 1 - eps, 1 + eps))
        if config.estimator == "grpo":
            kl = adv.k3_kl(logp, batch.ref_logp)
            per_token = per_token + hparams.kl_coef * kl
            metrics["train/k3_kl"] = adv.masked_mean(kl, m)
        loss = adv.aggregate(per_token, m, config.loss_aggregation)
        clipped = adv.masked_mean((jnp.abs(ratio - 1) > eps).astype(jnp.float32), m)
    if config.estimator == "ppo":
        v_clipped = batch.old_values + jnp.clip(values - batch.old_values, -hparams.vf_clip,
                                                hparams.vf_clip)
        vf = 0.5 * adv.masked_mean(jnp.maximum((values - batch.returns) ** 2,
                                               (v_clipped - batch.returns) ** 2), m)
        loss = loss + hparams.vf_coef * vf
        metrics["train/value_loss"] = vf
    metrics.update({"train/loss": loss, "train/clip_frac": clipped})
    return loss, metrics


def update_step(state: RLHFState, hparams: HParams, reference: dict, data: PromptData, *,
                config: RLHFConfig) -> tuple[RLHFState, dict]:
    """One rollout batch, then `ppo_epochs` passes of `num_minibatches` Adam steps over it."""
    state, batch, rollout_metrics = collect(state, hparams, reference, data, config=config)
    reference = jax.lax.stop_gradient(reference)
    opt = make_optimizer(hparams.lr, config.clip)  # lr is read from opt_state
    B = config.trained_rollouts
    mb = B // config.num_minibatches
    perm_key = jax.random.fold_in(state.key, 1)

    def step(carry, order):
        trainable, opt_state = carry
        mini = jax.tree.map(lambda a: a[order], batch)
        grads, metrics = jax.grad(functools.partial(loss_fn, config=config), has_aux=True)(
            trainable, hparams, reference, mini, data.fsm)
        updates, opt_state = opt.update(grads, opt_state, trainable)
        metrics["train/grad_norm"] = optax.global_norm(grads)
        return (optax.apply_updates(trainable, updates), opt_state), metrics

    if config.num_minibatches == 1:
        orders = jnp.broadcast_to(jnp.arange(B), (config.ppo_epochs, B))
    else:
        orders = jax.vmap(lambda k: jax.random.permutation(k, B))(
            jax.random.split(perm_key, config.ppo_epochs))
    orders = orders.reshape(-1, mb)
    (trainable, opt_state), metrics = jax.lax.scan(step, (state.trainable, state.opt_state),
                                                   orders)
    metrics = jax.tree.map(lambda x: x[-1], metrics)  # the last minibatch's
    metrics.update({**rollout_metrics,
                    "train/kl": jnp.mean(jnp.sum(batch.old_logp - batch.ref_logp, -1)),
                    "train/response_len": jnp.mean(jnp.sum(batch.mask, -1))})
    return state.replace(trainable=trainable, opt_state=opt_state,
                         update_idx=state.update_idx + 1), metrics


def evaluate_state(state: RLHFState, reference: dict, data: PromptData, *,
                   config: RLHFConfig) -> tuple[RLHFState, dict]:
    """The module doc's evaluation on `data.eval` (temperature 1, one sample per prompt)."""
    key, k_pi, k_ref = jax.random.split(state.key, 3)
    policy = pref_recipe.merged_policy(state.trainable, reference, config)
    ev = data.eval

    def ev_score(y, n):
        return score(config.true_reward or config.reward, data, ev, y, n, config)

    y_pi, n_pi = sample(policy, config, data, ev, k_pi, temperature=1.0)
    y_ref, n_ref = sample(reference, config, data, ev, k_ref, temperature=1.0)
    tokens, roles, mask = response_rows(ev, y_pi, n_pi)
    h, targets, _ = target_hidden(policy, config.model, tokens, roles,
                                  num_target=config.response_len)
    logits = constrained_logits(output_logits(policy, config.model, h), data.fsm, targets, mask)
    logp_all = jax.nn.log_softmax(logits, axis=-1)
    lp = sequence_logps(logits, targets, mask).sum
    lr, _ = _outputs(reference, None, tokens, roles, config, 1.0, data.fsm)
    p_logp = jnp.where(jnp.isfinite(logp_all), jnp.exp(logp_all) * logp_all, 0.0)
    entropy = -jnp.sum(jnp.sum(p_logp, -1) * mask, -1)
    r_pi, r_ref = ev_score(y_pi, n_pi), ev_score(y_ref, n_ref)
    y_g, n_g = sample(policy, config, data, ev, k_pi, temperature=0.0)
    out = {"eval/reward": jnp.mean(r_pi), "eval/reference_reward": jnp.mean(r_ref),
           "eval/kl": jnp.mean(lp - lr.sum(-1)),
           "eval/win_rate": jnp.mean((r_pi > r_ref) + 0.5 * (r_pi == r_ref)),
           "eval/entropy": jnp.mean(entropy), "eval/greedy_reward": jnp.mean(ev_score(y_g, n_g))}
    if config.eval_samples > 1:
        def one(k):
            return ev_score(*sample(policy, config, data, ev, k, temperature=1.0))

        more = jax.lax.map(one, jax.random.split(jax.random.fold_in(k_pi, 1),
                                                 config.eval_samples - 1))
        out["eval/pass@n"] = jnp.mean(jnp.maximum(r_pi, more.max(0)))
    return state.replace(key=key), out


def check_data(config: RLHFConfig, data: PromptData) -> None:
    """Refuses (ValueError) prompt data that cannot run with this config, before compiling."""
    prompt_lib.check_prompt_data(data, response_len=config.response_len,
                                 max_seq_len=config.model.max_seq_len,
                                 rewards=tuple({config.reward, config.true_reward or config.reward}
                                               - set(MODEL_REWARDS)))
    if config.token_reward == "rto" and data.token_model is None:
        raise ValueError("token_reward='rto' needs PromptData.token_model, the DPO-trained policy "
                         "whose log-ratio to the reference is RTO's token reward.")


def load_task(spec, config: RLHFConfig) -> tuple[dict, LlamaConfig, PromptData, dict]:
    """(reference, its LlamaConfig, PromptData, metadata) of the generated task `spec.task`
    (`lfx.pref.data.TaskSpec`) that `config.reward` scores; the `lfx.pref.main` hook."""
    name = config.true_reward or config.reward
    reward = prompt_lib.get_reward(name)
    if reward.load is None:
        raise ValueError(f"Reward {name!r} has no task loader; build its PromptData in code and "
                         f"call the recipe directly (or name the task's own reward in "
                         f"true_reward).")
    reference, model, data, meta = reward.load(spec.task, spec.eval_reward)
    if spec.reward_model:
        rm, rm_config = reward_model.load_reward_model(spec.reward_model)
        if rm_config != model:
            raise ValueError(f"reward_model {spec.reward_model!r} was not trained from this "
                             f"task's model ({rm_config} != {model}).")
        data = data.replace(reward_params={**data.reward_params, "reward_model": rm})
    if spec.token_model:
        token_model, token_config, _, _ = load_lm(spec.token_model)
        if token_config != model:
            raise ValueError(f"token_model {spec.token_model!r} is not a policy of this task's "
                             f"model ({token_config} != {model}).")
        data = data.replace(token_model=token_model)
    return reference, model, data, meta


def policy_params(state: RLHFState, reference: dict, *, config: RLHFConfig) -> dict:
    return pref_recipe.merged_policy(state.trainable, reference, config)


Config = RLHFConfig  # the family protocol's name (lfx.pref.main)


def make_train(config: RLHFConfig) -> RLHFRecipe:
    """Builds the recipe for a static config; validates it before anything is compiled."""
    config.validate()
    init = functools.partial(init_state, config=config)
    update = functools.partial(update_step, config=config)
    evaluate = functools.partial(evaluate_state, config=config)

    def run(state, hparams, reference, data, *, num_updates):
        return loop.run_updates(state, hparams, reference, data, num_updates=num_updates,
                                update=update, evaluate=lambda s: evaluate(s, reference, data),
                                eval_every=config.eval_every)

    train = functools.partial(loop.train_run, init=init, run=run, num_updates=config.num_updates)
    return RLHFRecipe(config, HParams, init, update, run, train, evaluate,
                      functools.partial(policy_params, config=config), config.num_updates,
                      config.eval_metrics)
