"""The objectives `lfx.pref.recipe` trains with, each an `(init, loss)` pair over one batch of pairs.

    objective = OBJECTIVES[config.objective]
    extra = objective.init(key, config, reference)          # its own trainable params ({} for DPO)
    loss, metrics = objective.loss(extra, batch, hparams, config)

`batch` is a `PairBatch`: the policy's `SequenceLogps` of the chosen and rejected responses, the
frozen reference's per-token log-probs of both (precomputed by the recipe), the response masks and,
for objectives with `needs_reference_hidden`, the reference's final hidden states at the response
positions and the per-position KL(pi_ref || pi) (SparsePO's masks and KL term read them). The
recipe differentiates the loss with respect to the policy and `extra` together. Shapes: B pairs,
K response columns, D model width.

  objective  loss                                                   source
  dpo        `losses.preference_loss` with config.loss_type and     Rafailov et al. 2023 and the
             config.f_divergence (every TRL DPOTrainer loss type)   DPO family (see `losses`)
  simpo      `losses.simpo_loss` on average log-probs, no           Meng et al. 2024,
             reference; + nll_weight * NLL(chosen) (TRL's            arXiv:2405.14734
             cpo_alpha; SimPO proper: 0)
  orpo       `losses.orpo_loss`: NLL(chosen) - beta log sigma(log    Hong et al. 2024,
             odds ratio), no reference (TRL's ORPOTrainer)           arXiv:2403.07691
  sparsepo   `sparsepo.sparsepo_loss`: TDPO1 with learned token      Christopoulou et al. 2024,
             masks on the reference's hidden states (one shared /   arXiv:2410.05102
             "_independent": two masks)
  alol, ...  `alol.alol_loss`: advantage-weighted, clipped-        Baheti et al. 2023,
             importance-weighted NLL of both responses, A = R -    arXiv:2305.14718
             mean pair reward (needs PreferenceData rewards)

NLL(chosen) is TRL's: the token-averaged cross-entropy of the chosen responses over the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lfx.pref import losses
from lfx.pref.sequence import SequenceLogps


class PairBatch(NamedTuple):
    """One batch of preference pairs as an objective sees it."""

    policy_chosen: SequenceLogps  # [B] (token [B, K])
    policy_rejected: SequenceLogps
    ref_chosen_token: jax.Array  # [B, K] m_t log pi_ref(y_t | ...), 0 off the response
    ref_rejected_token: jax.Array
    chosen_mask: jax.Array  # [B, K] float, 1 on response tokens
    rejected_mask: jax.Array
    ref_chosen_hidden: jax.Array | None  # [B, K, D] when the objective needs_reference_hidden
    ref_rejected_hidden: jax.Array | None
    chosen_token_kl: jax.Array | None = None  # [B, K] KL(pi_ref || pi) per response position
    rejected_token_kl: jax.Array | None = None  # (`sequence.token_kl`), with the hidden states
    chosen_reward: jax.Array | None = None  # [B] R(x, y) of the responses (A-LoL), when the
    rejected_reward: jax.Array | None = None  # data carry rewards


class Objective(NamedTuple):
    init: Callable[..., Any]  # (key, config, reference) -> params of the objective
    loss: Callable[..., tuple[jax.Array, dict]]  # (params, PairBatch, hparams, config)
    needs_reference_hidden: bool = False
    uses_reference: bool = True
    needs_rewards: bool = False  # trains on PreferenceData.chosen_reward / rejected_reward


def no_params(key, config, reference) -> dict:
    del key, config, reference
    return {}


def chosen_nll(batch: PairBatch) -> jax.Array:
    """TRL's NLL of the chosen responses: -sum of their token log-probs / their token count."""
    c = batch.policy_chosen
    return -jnp.sum(c.sum) / jnp.maximum(jnp.sum(c.count), 1.0)


def dpo_loss(params, batch: PairBatch, hparams, config) -> tuple[jax.Array, dict]:
    del params
    c, r = batch.policy_chosen, batch.policy_rejected
    return losses.preference_loss_and_metrics(
        c.sum, r.sum, batch.ref_chosen_token.sum(-1), batch.ref_rejected_token.sum(-1),
        loss_type=config.loss_type, beta=hparams.beta, label_smoothing=hparams.label_smoothing,
        f_divergence=config.f_divergence, alpha=hparams.alpha, discopop_tau=hparams.discopop_tau,
        chosen_lengths=c.count, rejected_lengths=r.count)


def _reference_free_metrics(loss, batch: PairBatch, beta) -> dict:
    c, r = batch.policy_chosen, batch.policy_rejected
    metrics = losses.preference_metrics(beta * c.mean, beta * r.mean)
    metrics.update({"train/loss": jax.lax.stop_gradient(loss),
                    "train/logps_chosen": jax.lax.stop_gradient(jnp.mean(c.sum)),
                    "train/logps_rejected": jax.lax.stop_gradient(jnp.mean(r.sum))})
    return metrics


def simpo(params, batch: PairBatch, hparams, config) -> tuple[jax.Array, dict]:
    del params, config
    per = losses.simpo_loss(batch.policy_chosen.mean, batch.policy_rejected.mean,
                            beta=hparams.beta, gamma_beta_ratio=hparams.gamma_beta_ratio,
                            label_smoothing=hparams.label_smoothing)
    nll = chosen_nll(batch)
    loss = jnp.mean(per) + hparams.nll_weight * nll
    metrics = _reference_free_metrics(loss, batch, hparams.beta)
    metrics["train/nll_loss"] = jax.lax.stop_gradient(nll)
    return loss, metrics


def orpo(params, batch: PairBatch, hparams, config) -> tuple[jax.Array, dict]:
    del params, config
    nll = chosen_nll(batch)
    per, log_odds = losses.orpo_loss(batch.policy_chosen.mean, batch.policy_rejected.mean, nll,
                                     beta=hparams.beta)
    loss = jnp.mean(per)
    metrics = _reference_free_metrics(loss, batch, hparams.beta)
    metrics.update({"train/nll_loss": jax.lax.stop_gradient(nll),
                    "train/log_odds_chosen": jax.lax.stop_gradient(jnp.mean(log_odds)),
                    "train/log_odds_ratio": jax.lax.stop_gradient(
                        jnp.mean(jax.nn.log_sigmoid(log_odds)))})
    return loss, metrics


from lfx.pref import alol, sparsepo  # noqa: E402  (after Objective and PairBatch: they use them)

OBJECTIVES: dict[str, Objective] = {
    "dpo": Objective(no_params, dpo_loss),
    "simpo": Objective(no_params, simpo, uses_reference=False),
    "orpo": Objective(no_params, orpo, uses_reference=False),
    "sparsepo": sparsepo.SPARSEPO,
    "sparsepo_independent": sparsepo.SPARSEPO_INDEPENDENT,
    **alol.ALOL_OBJECTIVES,  # alol, alol_ref_free, alol_seq, alol_kl, rlol, wbc, rgold
}
