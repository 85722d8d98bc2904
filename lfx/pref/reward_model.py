"""An explicit Bradley-Terry reward model (EXRM) and DPO's implicit reward (DPORM), as preference scorers.

Lin et al. 2024, "On the Limited Generalization Capability of the Implicit Reward Model Induced by
Direct Preference Optimization" (arXiv:2409.03650), compare two reward models learned from the same
preference pairs by their accuracy at ranking held-out chosen above rejected responses:

* **EXRM** (the RLHF reward model, Ouyang et al. 2022; TRL's `RewardTrainer`): the SFT Llama with a
  scalar head on the final (normed) hidden state of the response's last token,
      r_phi(x, y) = w . RMSNorm(h_T(x, y)),    w in R^D, zero at initialisation,
  trained on
      L = -mean log sigma(r_phi(x, y_c) - r_phi(x, y_r) - m) + c * mean (r_phi(x, y_c) + r_phi(x, y_r))^2
  (the margin m = 0 here: the pairs carry none; c is TRL's `center_rewards_coefficient`, 0 = off).
* **DPORM** (Rafailov et al. 2023, arXiv:2305.18290, Sec. 5): r(x, y) = beta (log pi(y|x) -
  log pi_ref(y|x)), sequence log-probabilities summed over response tokens (`implicit_reward`).

Training is the lfx recipe shape: `make_train(RewardModelConfig) -> recipe`, `recipe.train(key,
HParams, init_params, data) -> (state, metrics)` is one `lax.scan` of Adam steps
(`lfx.lm.train.make_optimizer`) on `batch_size` pairs drawn uniformly with replacement, jittable
and vmappable over seeds (the key) and hyperparameters. `init_params` are the SFT model's params
(the reward model starts from them); `recipe.params(state)` are the trained reward model's.

Shapes: N pairs, T row length (rows left-padded, so every response ends in the last column), D the
model width, K = num_target response columns.
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

from lfx.experiment.checks import NON_NEGATIVE, POSITIVE, check_ranges
from lfx.lm.config import LlamaConfig
from lfx.lm.io import load_lm, save_lm
from lfx.lm.llama import forward_hidden, rms_norm
from lfx.lm.train import PAD, make_optimizer
from lfx.pref.data import PreferenceData
from lfx.pref.prompts import PromptSet, register_reward, response_rows
from lfx.pref.sequence import response_logps
from lfx.rl import loop


@dataclasses.dataclass(frozen=True)
class RewardModelConfig:
    """Static settings of a reward-model run.

    model: the LlamaConfig of the SFT model the reward model starts from (experiments set it from
      the task, configs leave it None).
    num_updates / batch_size: Adam steps, pairs per step (drawn with replacement).
    clip: global-norm gradient clipping.
    """

    model: LlamaConfig | None = None
    num_updates: int = 300
    batch_size: int = 64
    clip: float = 1.0

    def validate(self) -> None:
        if not isinstance(self.model, LlamaConfig):
            raise ValueError("RewardModelConfig.model must be the SFT model's LlamaConfig, got "
                             f"{type(self.model).__name__}.")
        for name in ("num_updates", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"RewardModelConfig.{name} must be >= 1, got "
                                 f"{getattr(self, name)}.")


@struct.dataclass
class HParams:
    """Traced floats: the Adam learning rate and TRL's `center_rewards_coefficient` c (0 = off)."""

    lr: float = 3e-3
    center_rewards_coefficient: float = 0.0

    def validate(self) -> None:
        """Raises ValueError for a concrete value out of range (skipped when traced)."""
        check_ranges(self, {"lr": POSITIVE, "center_rewards_coefficient": NON_NEGATIVE})


@struct.dataclass
class RewardState:
    params: Any  # {"lm": the Llama's params, "head": float32 [D]}
    opt_state: Any
    key: jax.Array
    update_idx: jax.Array  # [] int32


class RewardRecipe(NamedTuple):
    config: RewardModelConfig
    HParams: type
    init: Callable[..., RewardState]  # (key, hparams, init_params, data) -> state
    update: Callable[..., tuple[RewardState, dict]]  # (state, hparams, init_params, data)
    run: Callable[..., tuple[RewardState, dict]]  # (state, hparams, init_params, data, *, num_updates)
    train: Callable[..., tuple[RewardState, dict]]  # (key, hparams, init_params, data)
    params: Callable[[RewardState], dict]  # state -> the reward model's params
    num_updates: int


def bradley_terry_loss(chosen: jax.Array, rejected: jax.Array, *, margin: jax.Array | float = 0.0,
                       center_rewards_coefficient: jax.Array | float = 0.0) -> jax.Array:
    """TRL `RewardTrainer.compute_loss`: -mean log sigma(r_c - r_r - m) + c mean (r_c + r_r)^2.

    chosen, rejected: float [B] scores; margin: [B] or a scalar. Returns the [] mean loss.
    """
    bt = -jnp.mean(jax.nn.log_sigmoid(chosen - rejected - margin))
    return bt + center_rewards_coefficient * jnp.mean((chosen + rejected) ** 2)


def preference_accuracy(scores_chosen: jax.Array, scores_rejected: jax.Array) -> jax.Array:
    """P[s_c > s_r] + 1/2 P[s_c = s_r] over pairs: scores [..., N] -> [...].

    Ties count one half (a constant scorer, e.g. DPORM at pi = pi_ref, has accuracy 1/2), so
    swapping chosen and rejected gives exactly 1 - accuracy.
    """
    wins = (scores_chosen > scores_rejected) + 0.5 * (scores_chosen == scores_rejected)
    return jnp.mean(wins, axis=-1)


def init_reward_params(lm_params: dict) -> dict:
    """The reward model at initialisation: the given Llama and a zero head (every score is 0)."""
    width = lm_params["embed"].shape[1]
    return {"lm": lm_params, "head": jnp.zeros((width,), jnp.float32)}


def score(params: dict, config: LlamaConfig, tokens: jax.Array, roles: jax.Array) -> jax.Array:
    """r_phi(x, y) of left-padded rows: tokens, roles int32 [B, T] -> float32 [B].

    The head reads the final RMSNorm of the hidden state of each row's last non-pad token (the
    response's last token, or its eos; HF's `LlamaForSequenceClassification` reads the same).
    """
    valid = roles > PAD
    positions = jnp.maximum(jnp.cumsum(valid, axis=1) - 1, 0).astype(jnp.int32)
    h, _ = forward_hidden(params["lm"], config, tokens, positions, mask=valid)
    T = tokens.shape[1]
    last_col = T - 1 - jnp.argmax(valid[:, ::-1], axis=1)
    h_last = jnp.take_along_axis(h, last_col[:, None, None], axis=1)[:, 0]
    last = rms_norm(h_last, params["lm"]["final_norm"], config.norm_eps)
    return last.astype(jnp.float32) @ params["head"]


def reward_model_reward(params: dict, rows: PromptSet, responses: jax.Array, lengths: jax.Array,
                        model: LlamaConfig) -> jax.Array:
    """The EXRM's score of sampled responses as an online RL reward (`lfx.pref.prompts`
    signature; reward name "reward_model"): r_phi(x, y) of the prompt + response (+ eos) rows."""
    tokens, roles, _ = response_rows(rows, responses, lengths)
    return score(params, model, tokens, roles)


register_reward("reward_model", reward_model_reward)


@dataclasses.dataclass(frozen=True)
class ProxyCheck:
    """How experiments/pref_reward_model.py trains and checks a reward model: the seed, and the
    responses per evaluation prompt sampled from the reference to compare its scores with the
    true reward."""

    seed: int = 0
    num_samples: int = 4

    def validate(self) -> None:
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}.")


def save_reward_model(path: str, params: dict, config: LlamaConfig, tokenizer, **info) -> None:
    """Writes a reward model as an `lfx.lm.save_lm` file of its Llama, the head in the sidecar."""
    save_lm(path, jax.device_get(params["lm"]), config, tokenizer, kind="reward_model",
            head=np.asarray(params["head"], np.float32).tolist(), **info)


def load_reward_model(path: str) -> tuple[dict, LlamaConfig]:
    """(reward-model params {"lm", "head"}, its LlamaConfig) of a `save_reward_model` file."""
    lm, config, _, info = load_lm(path)
    if info.get("kind") != "reward_model" or "head" not in info:
        raise ValueError(f"{path} is a language model, not a reward model (write one with "
                         f"experiments/pref_reward_model.py).")
    return {"lm": lm, "head": jnp.asarray(info["head"], jnp.float32)}, config


def score_rows(params: dict, config: LlamaConfig, tokens: jax.Array, roles: jax.Array, *,
               batch_size: int = 256) -> jax.Array:
    """`score` of many rows [N, T] in chunks of `batch_size` (`lax.map`) -> float32 [N]."""
    return jax.lax.map(lambda r: score(params, config, r[0][None], r[1][None])[0], (tokens, roles),
                       batch_size=batch_size)


def implicit_reward(policy: dict, reference: dict, config: LlamaConfig, tokens: jax.Array,
                    roles: jax.Array, beta: jax.Array | float, num_target: int) -> jax.Array:
    """DPORM: beta (log pi(y|x) - log pi_ref(y|x)), tokens, roles int32 [B, T] -> float32 [B]."""
    pi = response_logps(policy, config, tokens, roles, num_target=num_target).sum
    ref = response_logps(reference, config, tokens, roles, num_target=num_target).sum
    return beta * (pi - ref)


def init_state(key: jax.Array, hparams: HParams, init_params: dict, data: PreferenceData, *,
               config: RewardModelConfig) -> RewardState:
    """The reward model at `init_reward_params(init_params)` and fresh Adam state."""
    if config.batch_size > data.num_pairs:
        raise ValueError(f"RewardModelConfig.batch_size={config.batch_size} exceeds the "
                         f"{data.num_pairs} pairs.")
    params = init_reward_params(init_params)
    opt = make_optimizer(hparams.lr, config.clip)
    return RewardState(params=params, opt_state=opt.init(params), key=key,
                       update_idx=jnp.int32(0))


def loss_fn(params: dict, hparams: HParams, batch: dict, *, config: RewardModelConfig):
    """The Bradley-Terry loss of one batch and its metrics (TRL's accuracy and margin)."""
    B = batch["chosen_tokens"].shape[0]
    s = score(params, config.model,
              jnp.concatenate([batch["chosen_tokens"], batch["rejected_tokens"]]),
              jnp.concatenate([batch["chosen_roles"], batch["rejected_roles"]]))
    chosen, rejected = s[:B], s[B:]
    loss = bradley_terry_loss(chosen, rejected,
                              center_rewards_coefficient=hparams.center_rewards_coefficient)
    return loss, {"train/loss": loss, "train/accuracy": preference_accuracy(chosen, rejected),
                  "train/margin": jnp.mean(chosen - rejected)}


def update_step(state: RewardState, hparams: HParams, init_params: dict, data: PreferenceData, *,
                config: RewardModelConfig) -> tuple[RewardState, dict]:
    """One Adam step on `batch_size` pairs drawn uniformly with replacement."""
    del init_params  # an argument only so that init / run / train share the recipe signature
    key, k_batch = jax.random.split(state.key)
    idx = jax.random.randint(k_batch, (config.batch_size,), 0, data.num_pairs)
    batch = {"chosen_tokens": data.chosen_tokens[idx], "chosen_roles": data.chosen_roles[idx],
             "rejected_tokens": data.rejected_tokens[idx],
             "rejected_roles": data.rejected_roles[idx]}
    grads, metrics = jax.grad(functools.partial(loss_fn, config=config), has_aux=True)(
        state.params, hparams, batch)
    opt = make_optimizer(hparams.lr, config.clip)  # lr is read from opt_state
    updates, opt_state = opt.update(grads, state.opt_state, state.params)
    metrics["train/grad_norm"] = optax.global_norm(grads)
    return state.replace(params=optax.apply_updates(state.params, updates), opt_state=opt_state,
                         key=key, update_idx=state.update_idx + 1), metrics


def make_train(config: RewardModelConfig) -> RewardRecipe:
    """Builds the recipe for a static config; validates it before anything is compiled."""
    config.validate()
    init = functools.partial(init_state, config=config)
    update = functools.partial(update_step, config=config)

    def run(state, hparams, init_params, data, *, num_updates):
        return loop.run_updates(state, hparams, init_params, data, num_updates=num_updates,
                                update=update)

    train = functools.partial(loop.train_run, init=init, run=run, num_updates=config.num_updates)
    return RewardRecipe(config, HParams, init, update, run, train, lambda state: state.params,
                        config.num_updates)
