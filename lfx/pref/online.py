"""A KL-regularised policy-gradient baseline on the same task: RLOO (REINFORCE leave-one-out).

Ahmadian et al. 2024, "Back to Basics: Revisiting REINFORCE Style Optimization for Learning from
Human Feedback in LLMs" (arXiv:2402.14740), as TRL's `RLOOTrainer` (one on-policy gradient step per
batch, no clipping): for each of M prompts x, k responses y_1..y_k ~ pi( . | x) and

    R_i = r(x, y_i) - kl_coef * (log pi(y_i | x) - log pi_ref(y_i | x))     (no gradient)
    A_i = R_i - 1/(k-1) sum_{j != i} R_j                                     (leave-one-out baseline)
    loss = -1/(M k) sum_i A_i log pi(y_i | x)

so the gradient is an unbiased estimate of the gradient of the KL-regularised objective
E_pi[r] - kl_coef KL(pi || pi_ref), whose maximiser pi* ∝ pi_ref exp(r / kl_coef) is the policy the
DPO family reaches from preferences (Rafailov et al. 2023, Eq. 4). This is the "PPO" side of the DPO
paper's reward-KL frontier (Fig. 2), sampling inside the jitted update (`lexicon.sample_responses`).

    recipe = make_train(OnlineConfig(model=model))
    state, metrics = recipe.train(key, HParams(kl_coef=0.05), reference, data)

It shares the preference recipe's data (`PreferenceData`: its prompts are the first T - K columns of
the chosen rows, the reward is `data.reward_weights`), its policy parametrisation (full or LoRA) and
its evaluation (`recipe.evaluate_state`: reward, KL, win rate, entropy on the evaluation prompts),
so DPO and RLOO are measured by the same code. Metrics per update: "train/loss", "train/reward"
(mean r of the samples), "train/kl" (mean sampled log pi - log pi_ref), "train/grad_norm".
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

from lfx.experiment.checks import NON_NEGATIVE, POSITIVE, check_ranges
from lfx.lm.config import LlamaConfig
from lfx.lm.lora import lora_init
from lfx.lm.train import TARGET, make_optimizer
from lfx.pref import lexicon
from lfx.pref import recipe as pref_recipe
from lfx.pref.data import PreferenceData
from lfx.rl import loop


@dataclasses.dataclass(frozen=True)
class OnlineConfig:
    """Static settings of an RLOO run (the policy/evaluation fields mean what they mean in
    `recipe.PrefConfig`).

    prompts_per_update: M prompts drawn uniformly (with replacement) per update.
    samples_per_prompt: k >= 2 responses per prompt (the leave-one-out baseline needs two).
    """

    model: LlamaConfig | None = None
    num_updates: int = 200
    prompts_per_update: int = 16
    samples_per_prompt: int = 4
    response_len: int = 12
    lora_rank: int = 0
    lora_targets: tuple[str, ...] = ("wq", "wv")
    lora_scale: float = 1.0
    clip: float = 1.0
    eval_every: int = 50
    steps_per_update: int = 1

    def validate(self) -> None:
        """`check_settings` and a model: refuses (ValueError) what cannot run."""
        self.check_settings()
        pref_recipe.check_model(self)

    def check_settings(self) -> None:
        """Everything but `model` (checked before a task is loaded)."""
        if self.samples_per_prompt < 2:
            raise ValueError(f"OnlineConfig.samples_per_prompt must be >= 2 (RLOO's baseline "
                             f"leaves one out), got {self.samples_per_prompt}.")
        pref_recipe.check_policy_config(self)

    @property
    def batch_size(self) -> int:  # the pairs `recipe.check_data` compares with N
        return self.prompts_per_update


@struct.dataclass
class HParams:
    """lr: Adam learning rate. kl_coef: the KL penalty's weight (the frontier's beta)."""

    lr: float = 1e-3
    kl_coef: float = 0.05

    def validate(self) -> None:
        """Raises ValueError for a concrete value out of range (skipped when traced)."""
        check_ranges(self, {"lr": POSITIVE, "kl_coef": NON_NEGATIVE})


@struct.dataclass
class OnlineState:
    trainable: dict  # {"policy": parameters or LoRA adapters}
    opt_state: Any
    key: jax.Array
    update_idx: jax.Array  # [] int32
    eval_return: dict  # the latest evaluation, recipe.EVAL_METRICS -> []


class OnlineRecipe(NamedTuple):
    config: OnlineConfig
    HParams: type
    init: Callable[..., OnlineState]  # (key, hparams, reference, data)
    update: Callable[..., tuple[OnlineState, dict]]
    run: Callable[..., tuple[OnlineState, dict]]  # (state, hparams, reference, data, *, num_updates)
    train: Callable[..., tuple[OnlineState, dict]]  # (key, hparams, reference, data)
    evaluate: Callable[..., tuple[OnlineState, dict]]
    policy: Callable[[OnlineState, dict], dict]
    num_updates: int


def leave_one_out_advantages(returns: jax.Array) -> jax.Array:
    """A_i = R_i - mean_{j != i} R_j over the last axis: returns [..., k] -> [..., k]."""
    k = returns.shape[-1]
    total = returns.sum(-1, keepdims=True)
    return returns - (total - returns) / (k - 1)


def init_state(key: jax.Array, hparams: HParams, reference: dict, data: PreferenceData, *,
               config: OnlineConfig) -> OnlineState:
    pref_recipe.check_data(config, data)
    key, k_lora = jax.random.split(key)
    policy = (lora_init(k_lora, reference, config.lora_rank, targets=config.lora_targets)
              if config.lora_rank else reference)
    trainable = {"policy": policy}
    zero = {name: jnp.float32(0.0) for name in pref_recipe.EVAL_METRICS}
    return OnlineState(trainable=trainable,
                       opt_state=make_optimizer(hparams.lr, config.clip).init(trainable), key=key,
                       update_idx=jnp.int32(0), eval_return=zero)


def _rows(prompts, responses):
    tokens = jnp.concatenate([prompts, responses], axis=1)
    roles = jnp.concatenate([jnp.ones_like(prompts), jnp.full_like(responses, TARGET)], axis=1)
    return tokens, roles


def update_step(state: OnlineState, hparams: HParams, reference: dict, data: PreferenceData, *,
                config: OnlineConfig) -> tuple[OnlineState, dict]:
    """Sample k responses for M prompts, score them, one RLOO gradient step."""
    key, k_idx, k_sample = jax.random.split(state.key, 3)
    M, k, K = config.prompts_per_update, config.samples_per_prompt, config.response_len
    idx = jax.random.randint(k_idx, (M,), 0, data.num_pairs)
    prompts = jnp.repeat(data.chosen_tokens[idx, : data.chosen_tokens.shape[1] - K], k, axis=0)
    policy = pref_recipe.merged_policy(state.trainable, reference, config)
    y = lexicon.sample_responses(jax.lax.stop_gradient(policy), config.model, prompts, k_sample,
                                 length=K)
    tokens, roles = _rows(prompts, y)
    logp_ref = pref_recipe.response_logps_of(reference, tokens, roles, config).sum
    r = lexicon.reward(data.reward_weights, y)

    def loss_fn(trainable):
        logp = pref_recipe.response_logps_of(pref_recipe.merged_policy(trainable, reference, config), tokens, roles,
                                  config).sum
        kl = jax.lax.stop_gradient(logp - logp_ref)
        advantages = leave_one_out_advantages((r - hparams.kl_coef * kl).reshape(M, k))
        loss = -jnp.mean(advantages.reshape(-1) * logp)
        return loss, {"train/loss": loss, "train/reward": jnp.mean(r), "train/kl": jnp.mean(kl)}

    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.trainable)
    opt = make_optimizer(hparams.lr, config.clip)
    updates, opt_state = opt.update(grads, state.opt_state, state.trainable)
    metrics["train/grad_norm"] = optax.global_norm(grads)
    return state.replace(trainable=optax.apply_updates(state.trainable, updates),
                         opt_state=opt_state, key=key,
                         update_idx=state.update_idx + 1), metrics


Config = OnlineConfig  # the family protocol's name (lfx.pref.main)


def make_train(config: OnlineConfig) -> OnlineRecipe:
    """Builds the recipe for a static config; validates it before anything is compiled."""
    config.validate()
    init = functools.partial(init_state, config=config)
    update = functools.partial(update_step, config=config)
    evaluate = functools.partial(pref_recipe.evaluate_state, config=config)

    def run(state, hparams, reference, data, *, num_updates):
        return loop.run_updates(state, hparams, reference, data, num_updates=num_updates,
                                update=update, evaluate=lambda s: evaluate(s, reference, data),
                                eval_every=config.eval_every)

    train = functools.partial(loop.train_run, init=init, run=run, num_updates=config.num_updates)
    return OnlineRecipe(config, HParams, init, update, run, train, evaluate,
                        functools.partial(pref_recipe.policy_params, config=config),
                        config.num_updates)

