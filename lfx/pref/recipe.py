"""The offline preference-optimisation recipe: a language model tuned on (prompt, chosen, rejected).

    recipe = make_train(PrefConfig(model=model, loss_type="sigmoid"))   # DPO; any LOSS_TYPES
    state, metrics = recipe.train(key, HParams(beta=0.1), reference, data)
    sweep = jax.jit(jax.vmap(jax.vmap(recipe.train, (0, None, None, None)),
                             (None, 0, None, None)))            # seeds x (beta, lr, ...) settings

`reference` is the frozen reference model pi_ref (the SFT model's params) and `data` a
`PreferenceData`; both are arguments, so one compiled run serves every dataset of the same shapes
and the reference is never part of what is differentiated. The policy starts at the reference
(full fine-tuning), or is `reference + LoRA` with B = 0 (`lora_rank > 0`; only the adapters train),
so the first update starts exactly at pi = pi_ref. The reference's sequence log-probabilities of
every chosen and rejected response are computed once, in `init` (TRL's `precompute_ref_log_probs`),
and carried in the state.

An update draws `batch_size` pairs uniformly with replacement, runs the policy on chosen and
rejected rows in one forward pass (TRL's `concatenated_forward`), and takes one Adam step
(`lfx.lm.train.make_optimizer`, global-norm clipping) on the objective's loss
(`objectives.OBJECTIVES[config.objective]`: the DPO family of `losses.preference_loss`, SimPO,
ORPO, ...), jointly in the policy and the objective's own parameters (e.g. SparsePO's masks).

Evaluation (`eval_every > 0`, inside the same jitted call) samples one response per evaluation
prompt from the policy and from the reference at temperature 1 and reports

    eval/reward            mean true reward r(x, y), y ~ pi            (the task's exact reward)
    eval/reference_reward  the same for y ~ pi_ref
    eval/kl                mean_y~pi [log pi(y|x) - log pi_ref(y|x)]   (sequence-level KL estimate,
                                                                        the DPO paper's Fig. 2 axis)
    eval/win_rate          P[r(y_pi) > r(y_ref)] + 1/2 P[=] on the same prompts
    eval/entropy           mean_y~pi sum_t H(pi(. | x, y_<t))          (diversity: the f-DPO
                                                                        paper's predictive entropy)

Shapes: N pairs, T row length, K = response_len (responses end in the last K columns), E
evaluation prompts of P tokens, V vocabulary.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from lfx.experiment.checks import NON_NEGATIVE, OPEN_UNIT, POSITIVE, check_ranges
from lfx.lm.config import LlamaConfig
from lfx.lm.llama import output_logits
from lfx.lm.lora import LORA_TARGETS, lora_apply, lora_init
from lfx.lm.train import TARGET, make_optimizer, target_hidden, target_logits
from lfx.pref import lexicon, losses
from lfx.pref.data import PreferenceData
from lfx.pref.objectives import OBJECTIVES, PairBatch
from lfx.pref.sequence import (
    SequenceLogps,
    constrained_logits,
    response_logps,
    sequence_logps,
    token_kl,
)
from lfx.rl import loop

SMOOTHING = ("in [0, 0.5)", lambda v: (v >= 0) & (v < 0.5))
EVAL_METRICS = ("eval/reward", "eval/reference_reward", "eval/kl", "eval/win_rate",
                "eval/entropy")


@dataclasses.dataclass(frozen=True)
class PrefConfig:
    """Static settings (shapes, loop lengths, code paths) of a preference-optimisation run.

    model: the LlamaConfig of the reference (and policy); experiments set it from the task's SFT
      model (`lexicon.load_task`), so configs leave it None.
    objective: the loss trained (`objectives.OBJECTIVES`: "dpo" and its family, "simpo", "orpo").
    loss_type / f_divergence: the DPO family member (`losses.LOSS_TYPES` / `losses.F_DIVERGENCES`).
    response_len: K, the columns that hold responses (logits are computed for these only).
    lora_rank: 0 trains every parameter; r > 0 trains rank-r adapters on `lora_targets`.
    eval_every: evaluate after every this many updates (0: never).
    """

    model: LlamaConfig | None = None
    objective: str = "dpo"
    loss_type: str = "sigmoid"
    f_divergence: str = "reverse_kl"
    num_updates: int = 200
    batch_size: int = 64
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
        check_model(self)

    def check_settings(self) -> None:
        """Everything but `model` (checked before a task is loaded)."""
        if self.objective not in OBJECTIVES:
            raise ValueError(f"Unknown objective {self.objective!r}; known objectives: "
                             f"{', '.join(OBJECTIVES)}.")
        losses.check_loss_args(self.loss_type, 1.0, f_divergence=self.f_divergence)
        check_policy_config(self)


def check_model(config: Any) -> None:
    """ValueError unless `config.model` is a LlamaConfig (experiments set it from the task)."""
    if not isinstance(config.model, LlamaConfig):
        raise ValueError(f"{type(config).__name__}.model must be the reference's LlamaConfig "
                         f"(experiments take it from the task's SFT model), got "
                         f"{type(config.model).__name__}.")


def check_policy_config(config: Any) -> None:
    """The checks every `lfx.pref` recipe config shares (its loop, LoRA and evaluation fields);
    ValueError naming the field."""
    name = type(config).__name__
    for field in ("num_updates", "batch_size", "response_len"):
        if getattr(config, field) < 1:
            raise ValueError(f"{name}.{field} must be >= 1, got {getattr(config, field)}.")
    if config.lora_rank < 0:
        raise ValueError(f"{name}.lora_rank must be >= 0 (0 = full fine-tuning), got "
                         f"{config.lora_rank}.")
    unknown = set(config.lora_targets) - set(LORA_TARGETS)
    if config.lora_rank and unknown:
        raise ValueError(f"Unknown lora_targets {sorted(unknown)}; choose from {LORA_TARGETS}.")
    if not 0 <= config.eval_every <= config.num_updates:
        raise ValueError(f"{name}.eval_every must be in [0, num_updates={config.num_updates}], "
                         f"got {config.eval_every}.")


@struct.dataclass
class HParams:
    """Traced floats of a preference run (a batch of these is a sweep).

    lr: Adam learning rate. beta: the KL-regularisation strength of the DPO family. label_smoothing:
    the label-noise rate eps (cDPO / robust / exo / aot); 0 for the other loss types. alpha: the
    alpha-divergence's alpha. discopop_tau: DiscoPOP's temperature. (See `losses.preference_loss`.)
    gamma_beta_ratio: SimPO's target margin over beta. nll_weight: SimPO's weight of the chosen NLL
    (TRL CPOTrainer's cpo_alpha; 0 is SimPO proper). sparsepo_l1_u, sparsepo_l1_d: SparsePO's L1
    weights on its reward and KL masks (the authors' HH runs: 0.001). alol_clip: A-LoL's eps,
    importance weights clamped to [1 - eps, 1 + eps] (the authors' ppo_clip 0.9); alol_kl_beta:
    A-LoL KL's beta (the authors' 0.2).
    """

    lr: float = 1e-3
    beta: float = 0.1
    label_smoothing: float = 0.0
    alpha: float = 0.5
    discopop_tau: float = 0.05
    gamma_beta_ratio: float = 0.5
    nll_weight: float = 0.0
    sparsepo_l1_u: float = 0.0
    sparsepo_l1_d: float = 0.0
    alol_clip: float = 0.9
    alol_kl_beta: float = 0.2

    def validate(self) -> None:
        """Raises ValueError for a concrete value out of range (skipped when traced)."""
        check_ranges(self, {"lr": POSITIVE, "beta": POSITIVE, "label_smoothing": SMOOTHING,
                            "alpha": OPEN_UNIT, "discopop_tau": POSITIVE,
                            "gamma_beta_ratio": NON_NEGATIVE, "nll_weight": NON_NEGATIVE,
                            "sparsepo_l1_u": NON_NEGATIVE, "sparsepo_l1_d": NON_NEGATIVE,
                            "alol_clip": NON_NEGATIVE, "alol_kl_beta": NON_NEGATIVE})


@struct.dataclass
class PrefState:
    trainable: dict  # {"policy": its parameters or LoRA adapters, "objective": the objective's}
    opt_state: Any
    ref_chosen: jax.Array  # [N, K] m_t log pi_ref(y_t | x, y_<t) of the chosen responses
    ref_rejected: jax.Array  # [N, K]
    key: jax.Array
    update_idx: jax.Array  # [] int32
    eval_return: dict  # the latest evaluation, EVAL_METRICS -> []


class PrefRecipe(NamedTuple):
    config: PrefConfig
    HParams: type
    init: Callable[..., PrefState]  # (key, hparams, reference, data) -> state
    update: Callable[..., tuple[PrefState, dict]]  # (state, hparams, reference, data)
    run: Callable[..., tuple[PrefState, dict]]  # (state, hparams, reference, data, *, num_updates)
    train: Callable[..., tuple[PrefState, dict]]  # (key, hparams, reference, data)
    evaluate: Callable[..., tuple[PrefState, dict]]  # (state, reference, data)
    policy: Callable[[PrefState, dict], dict]  # (state, reference) -> the policy's params
    num_updates: int


def check_data(config: PrefConfig, data: PreferenceData) -> None:
    """Refuses (ValueError) data whose shapes do not fit the config, before anything compiles."""
    shapes = {k: tuple(getattr(data, k).shape) for k in
              ("chosen_tokens", "chosen_roles", "rejected_tokens", "rejected_roles")}
    if len(set(shapes.values())) != 1 or len(shapes["chosen_tokens"]) != 2:
        raise ValueError(f"chosen/rejected tokens and roles must all be [N, T]; got {shapes}.")
    N, T = shapes["chosen_tokens"]
    if not 1 <= config.response_len < T:
        raise ValueError(f"PrefConfig.response_len={config.response_len} must be in [1, {T - 1}] "
                         f"for rows of length {T}.")
    if config.batch_size > N:
        raise ValueError(f"PrefConfig.batch_size={config.batch_size} exceeds the {N} pairs.")
    if tuple(data.reward_weights.shape) != (config.model.vocab_size,):
        raise ValueError(f"reward_weights must be [{config.model.vocab_size}], got "
                         f"{tuple(data.reward_weights.shape)}.")
    objective = OBJECTIVES.get(getattr(config, "objective", ""))  # None for RLOO's config
    if objective is not None and objective.needs_rewards and (
            data.chosen_reward is None or data.rejected_reward is None):
        raise ValueError(f"objective {config.objective!r} trains on rewards: PreferenceData needs "
                         f"chosen_reward and rejected_reward [N].")
    if data.eval_prompts.ndim != 2:
        raise ValueError(f"eval_prompts must be [E, P], got {tuple(data.eval_prompts.shape)}.")
    for name in ("chosen_roles", "rejected_roles"):
        roles = getattr(data, name)
        if isinstance(roles, jax.core.Tracer):
            continue
        if np.any(np.asarray(roles)[:, : T - config.response_len] == TARGET):
            raise ValueError(f"{name}: a response token lies before the last response_len="
                             f"{config.response_len} columns; raise response_len.")


def merged_policy(trainable: dict, reference: dict, config: PrefConfig) -> dict:
    """The policy's parameters from the trainable tree: the model itself, or the reference with
    the LoRA adapters merged (`config.lora_rank > 0`)."""
    if config.lora_rank:
        return lora_apply(reference, trainable["policy"], scale=config.lora_scale)
    return trainable["policy"]


def policy_params(state: PrefState, reference: dict, *, config: PrefConfig) -> dict:
    """The policy's parameters (the trainable model, or the reference with the adapters merged)."""
    return merged_policy(state.trainable, reference, config)


def response_logps_of(params, tokens, roles, config) -> SequenceLogps:
    """`sequence.response_logps` of rows [B, T] with the config's model and response_len."""
    return response_logps(params, config.model, tokens, roles, num_target=config.response_len)


def init_state(key: jax.Array, hparams: HParams, reference: dict, data: PreferenceData, *,
               config: PrefConfig) -> PrefState:
    """The policy at the reference, the objective's params, fresh Adam state, and the reference's
    per-token log-probs of every response."""
    check_data(config, data)
    key, k_lora, k_obj = jax.random.split(key, 3)
    if config.lora_rank:
        policy = lora_init(k_lora, reference, config.lora_rank, targets=config.lora_targets)
    else:
        policy = reference
    trainable = {"policy": policy,
                 "objective": OBJECTIVES[config.objective].init(k_obj, config, reference)}
    ref = jax.lax.stop_gradient(reference)

    def ref_of(rows):
        tokens, roles = rows
        return response_logps_of(ref, tokens[None], roles[None], config).token[0]

    ref_c = jax.lax.map(ref_of, (data.chosen_tokens, data.chosen_roles),
                        batch_size=config.batch_size)
    ref_r = jax.lax.map(ref_of, (data.rejected_tokens, data.rejected_roles),
                        batch_size=config.batch_size)
    opt = make_optimizer(hparams.lr, config.clip)
    zero = {name: jnp.float32(0.0) for name in EVAL_METRICS}
    return PrefState(trainable=trainable, opt_state=opt.init(trainable), ref_chosen=ref_c,
                     ref_rejected=ref_r, key=key, update_idx=jnp.int32(0), eval_return=zero)


def loss_fn(trainable: dict, hparams: HParams, reference: dict, batch: dict, *,
            config: PrefConfig) -> tuple[jax.Array, dict]:
    """The objective's loss on one batch: the policy runs on chosen and rejected rows in one
    forward pass (TRL's concatenated_forward)."""
    objective = OBJECTIVES[config.objective]
    B = batch["chosen_tokens"].shape[0]
    tokens = jnp.concatenate([batch["chosen_tokens"], batch["rejected_tokens"]])
    roles = jnp.concatenate([batch["chosen_roles"], batch["rejected_roles"]])
    policy = merged_policy(trainable, reference, config)
    h, targets, mask = target_hidden(policy, config.model, tokens, roles,
                                     num_target=config.response_len)
    logits = output_logits(policy, config.model, h)
    lp = sequence_logps(logits, targets, mask)
    half = lambda x, i: jax.tree.map(lambda a: a[i * B:(i + 1) * B], x)  # noqa: E731
    hidden, kl = (None, None), (None, None)
    if objective.needs_reference_hidden:  # the reference's forward on the batch
        h_ref, _, _ = target_hidden(reference, config.model, tokens, roles,
                                    num_target=config.response_len)
        hidden = (h_ref[:B], h_ref[B:])
        per_token = token_kl(logits, output_logits(reference, config.model, h_ref), mask)
        kl = (per_token[:B], per_token[B:])
    pairs = PairBatch(policy_chosen=half(lp, 0), policy_rejected=half(lp, 1),
                      ref_chosen_token=batch["ref_chosen"], ref_rejected_token=batch["ref_rejected"],
                      chosen_mask=mask[:B], rejected_mask=mask[B:], ref_chosen_hidden=hidden[0],
                      ref_rejected_hidden=hidden[1], chosen_token_kl=kl[0],
                      rejected_token_kl=kl[1], chosen_reward=batch.get("chosen_reward"),
                      rejected_reward=batch.get("rejected_reward"))
    return objective.loss(trainable["objective"], pairs, hparams, config)


def update_step(state: PrefState, hparams: HParams, reference: dict, data: PreferenceData, *,
                config: PrefConfig) -> tuple[PrefState, dict]:
    """One Adam step on `batch_size` pairs drawn uniformly with replacement."""
    key, k_batch = jax.random.split(state.key)
    idx = jax.random.randint(k_batch, (config.batch_size,), 0, data.num_pairs)
    batch = {"chosen_tokens": data.chosen_tokens[idx], "chosen_roles": data.chosen_roles[idx],
             "rejected_tokens": data.rejected_tokens[idx],
             "rejected_roles": data.rejected_roles[idx],
             "ref_chosen": state.ref_chosen[idx], "ref_rejected": state.ref_rejected[idx]}
    if data.chosen_reward is not None:
        batch["chosen_reward"] = data.chosen_reward[idx]
        batch["rejected_reward"] = data.rejected_reward[idx]
    grads, metrics = jax.grad(functools.partial(loss_fn, config=config), has_aux=True)(
        state.trainable, hparams, jax.lax.stop_gradient(reference), batch)
    opt = make_optimizer(hparams.lr, config.clip)  # lr is read from opt_state
    updates, opt_state = opt.update(grads, state.opt_state, state.trainable)
    metrics["train/grad_norm"] = optax.global_norm(grads)
    return state.replace(trainable=optax.apply_updates(state.trainable, updates),
                         opt_state=opt_state, key=key,
                         update_idx=state.update_idx + 1), metrics


def evaluate_state(state: PrefState, reference: dict, data: PreferenceData, *,
                   config: PrefConfig) -> tuple[PrefState, dict]:
    """Reward, KL and win rate of the policy on the evaluation prompts (see the module doc)."""
    key, k_pi, k_ref = jax.random.split(state.key, 3)
    policy = policy_params(state, reference, config=config)
    prompts = data.eval_prompts
    y_pi = lexicon.sample_responses(policy, config.model, prompts, k_pi, length=config.response_len)
    y_ref = lexicon.sample_responses(reference, config.model, prompts, k_ref,
                                     length=config.response_len)
    tokens, roles = _eval_rows(prompts, y_pi)
    fsm = lexicon.response_fsm(config.model.vocab_size)

    def logits_of(params):  # of the FSM-constrained sampler (`sequence.constrained_logits`)
        logits, targets, mask = target_logits(params, config.model, tokens, roles,
                                              num_target=config.response_len)
        return constrained_logits(logits, fsm, targets, mask), targets, mask

    logits, targets, mask = logits_of(policy)
    ref_logits, _, _ = logits_of(reference)
    kl = sequence_logps(logits, targets, mask).sum - sequence_logps(ref_logits, targets, mask).sum
    logp = jax.nn.log_softmax(logits, axis=-1)
    p_logp = jnp.where(jnp.isfinite(logp), jnp.exp(logp) * logp, 0.0)
    entropy = -jnp.sum(jnp.sum(p_logp, axis=-1) * mask, axis=-1)
    r_pi = lexicon.reward(data.reward_weights, y_pi)
    r_ref = lexicon.reward(data.reward_weights, y_ref)
    win = jnp.mean((r_pi > r_ref) + 0.5 * (r_pi == r_ref))
    out = {"eval/reward": jnp.mean(r_pi), "eval/reference_reward": jnp.mean(r_ref),
           "eval/kl": jnp.mean(kl), "eval/win_rate": win, "eval/entropy": jnp.mean(entropy)}
    return state.replace(key=key), out


def _eval_rows(prompts, responses):
    tokens = jnp.concatenate([prompts, responses], axis=1)
    roles = jnp.concatenate([jnp.ones_like(prompts), jnp.full_like(responses, TARGET)], axis=1)
    return tokens, roles


Config = PrefConfig  # the family protocol's name (lfx.pref.main)


def make_train(config: PrefConfig) -> PrefRecipe:
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
    return PrefRecipe(config, HParams, init, update, run, train, evaluate,
                      functools.partial(policy_params, config=config), config.num_updates)
