"""A-LoL: Advantage-Leftover-Lunch offline policy gradients, and its reward-weighted relatives.

Baheti et al. 2023, "Improving Language Models with Advantage-based Offline Policy Gradients"
(arXiv:2305.14718; code: github.com/abaheti95/LoL-RL). Each response y of the offline data set,
with its reward R(x, y), is a single-action episode; the policy pi_theta starts at the reference
(SFT) policy pi_ref, and the objective is the off-policy policy gradient

    grad J(theta) = E_(x, y)~D [ A_pi_ref(x, y) * r(theta) * grad log pi_theta(y | x) ],
    A_pi_ref(x, y) = R(x, y) - V_pi_ref(x),          r(theta) = pi_theta(y | x) / pi_ref(y | x),

with negative-advantage data dropped (A clamped at 0) and the importance weight clipped to
[1 - eps, 1 + eps] and held constant (no gradient through it). In the authors' code (NLL = -log pi
summed over response tokens, then `torch.mean` over the batch) the per-response losses are

  variant         per-response loss                                    authors' code
  a_lol           -A+ sg[clip(pi/pi_ref)] sum_t log pi(y_t)            lolrl_qlora_llama_hh.py
                                                                       L844-905; train_generation_
                                                                       task_with_off_policy_PG.py
                                                                       L669-683, L690-697
  a_lol_ref_free  -A+ sum_t log pi(y_t)             (weight 1)          hh L953-962; gen L676-677
  a_lol_seq       -A+ sum_t sg[clip(pi_t/pi_ref_t)] log pi(y_t)        hh L906-952; gen L662-668,
                  (per-token weights pi(y_t|.)/pi_ref(y_t|.))          L679-681
  a_lol_kl        -A+ sum_t log pi(y_t)                                hh L880-891 (a_lol with
                  + beta (sum_t log pi(y_t) - sum_t log pi_ref(y_t))   kl_beta > 0, ppo_clip 0);
                                                                       gen L676-677, L698-702
  r_lol           -R sg[clip(pi/pi_ref)] sum_t log pi(y_t)             hh L789-843; gen L669-683,
                                                                       L704-706
  wbc             -R sum_t log pi(y_t)   (reward-weighted behaviour    hh L761-769; gen L611-617
                  cloning)
  r_gold          -R sum_t sg[max(pi(y_t|.), u)] log pi(y_t), u = 0.1  hh L772-788; gen L618-633
                  (GOLD, Pang & He 2021)

A+ = max(A, 0) (hh L876-877, gen L692-695); sg = stop-gradient (the authors compute the weights
under `torch.no_grad()` from detached log-probs); clip(w) = clamp(w, 1 - eps, 1 + eps) with the
authors' eps = `ppo_clip` = 0.9 (README; hh L111), i.e. weights in [0.1, 1.9]; beta = `kl_beta`
(README: 0.2). Because the weight is constant, d/dtheta of the a_lol loss is exactly
-A+ clip(r) grad log pi: the policy gradient above (with PPO-style clipping of the value of r but
not of its gradient, unlike PPO's min(.)). The KL term of a_lol_kl is the authors' estimate of
KL(pi || pi_ref) on the data's responses (not on samples of pi), added unweighted.

How the authors get V_pi_ref(x) (hh L184-246, L249-315, L500-529; rl_utils.py ValueHeadAttention
L452-505, train_value_function_on_val_predictions L221-311): they decode the reference policy
on a validation set (HH: greedily, hh L150), score those responses with the reward model (rewards
in [0, 1]: a sigmoid of the reward-model score), and fit a value head (attention pooling of the
*reference's* final hidden states over the prompt, a linear layer and a sigmoid * max_value) by
MSE to those rewards; V(x) is that head on the training prompts, A = R - V. Training then samples
examples with probability proportional to A+ ("good_priority": chosen responses only;
"all_priority": chosen and rejected; hh L566-622) and also multiplies the loss by A+ (without a
sampling strategy the batch is uniform and only the A+ weighting applies, hh L679-694).

Here (see `pair_advantages`): both responses of a lexicon pair are samples of pi_ref (the SFT
model, `lexicon.make_pairs`), so the value is the Monte-Carlo mean of the pair's exact rewards,
V(x) = (R(x, y_c) + R(x, y_r)) / 2, which gives A(y_c) = -A(y_r) = (R_c - R_r) / 2 (half the
leave-one-out advantage, hence an unbiased advantage estimate); both responses are trained on
(the authors' "all_priority" data), with uniform sampling and the A+ weighting (their
no-sampling-strategy path). Where this differs from the authors: (1) the value is this per-prompt
sample mean, not a learned head on greedy reference decodes (the task's exact reward and two
reference samples per prompt make the learned head unnecessary; `alol_loss` takes any advantages);
(2) no A+-proportional sampling (the recipe samples uniformly); (3) the clip is always applied when
`clip` is given (the authors skip it for a_lol/r_lol when ppo_clip == 0, hh L811/L871, but clamp to
exactly 1 for a_lol_seq, hh L930); `clip=None` is "no clipping"; (4) the lexicon reward is in
[-1, 1], so r_lol / wbc / r_gold, which the authors ran on rewards in [0, 1], see negative rewards.

Shapes: B responses, K response columns.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lfx.pref.objectives import Objective, PairBatch, no_params

VARIANTS = ("a_lol", "a_lol_ref_free", "a_lol_seq", "a_lol_kl", "r_lol", "wbc", "r_gold")
ADVANTAGE_VARIANTS = ("a_lol", "a_lol_ref_free", "a_lol_seq", "a_lol_kl")
TOKEN_VARIANTS = ("a_lol_seq", "r_gold")  # per-token weights: need [B, K] log-probs
CLIPPED_VARIANTS = ("a_lol", "a_lol_seq", "r_lol")
GOLD_LOWER_BOUND = 0.1  # the authors' u in max(pi(y_t), u) (hh L781, gen L625)


def clipped_weight(log_ratio: jax.Array, clip) -> jax.Array:
    """sg[clamp(exp(log_ratio), 1 - clip, 1 + clip)]; `clip=None`: sg[exp(log_ratio)].

    The exponent is capped at log(1 + clip) first (the same value, and never inf: finite at any
    log-ratio)."""
    log_ratio = jax.lax.stop_gradient(jnp.asarray(log_ratio, jnp.float32))
    if clip is None:
        return jnp.exp(log_ratio)
    clip = jnp.asarray(clip, jnp.float32)
    return jnp.maximum(jnp.exp(jnp.minimum(log_ratio, jnp.log1p(clip))), 1.0 - clip)


def alol_loss(policy_logps: jax.Array, ref_logps: jax.Array | None, advantages: jax.Array, *,
              variant: str = "a_lol", clip: float | jax.Array | None = 0.9,
              kl_beta: float | jax.Array = 0.0) -> jax.Array:
    """Per-response A-LoL loss (the batch loss is its mean, as the authors' `torch.mean`).

    Args:
      policy_logps: float [B, K] per-token m_t log pi_theta(y_t | x, y_<t) (0 off the response, as
        `SequenceLogps.token`), or [B] sequence log-probs sum_t m_t log pi_theta(y_t | ...) for the
        sequence-level variants (a_lol, a_lol_ref_free, a_lol_kl, r_lol, wbc).
      ref_logps: the reference's log-probs of the same responses, the same shape ([B, K] or [B]);
        unused (may be None) for a_lol_ref_free, wbc and r_gold.
      advantages: float [B], A = R(x, y) - V_pi_ref(x) for the a_lol variants (clamped at 0 here:
        negative-advantage data are dropped), the reward R(x, y) for r_lol / wbc / r_gold (used
        as is). Treated as constants (stop-gradient).
      variant: one of `VARIANTS` (module doc for each formula).
      clip: eps, importance weights are clamped to [1 - eps, 1 + eps] (a_lol, a_lol_seq, r_lol);
        None: unclipped weights.
      kl_beta: beta of a_lol_kl's KL term (ignored by the other variants).
    Returns:
      float32 [B] per-response losses.
    """
    if variant not in VARIANTS:
        raise ValueError(f"Unknown A-LoL variant {variant!r}; known: {', '.join(VARIANTS)}.")
    lp = jnp.asarray(policy_logps, jnp.float32)
    if variant in TOKEN_VARIANTS and lp.ndim != 2:
        raise ValueError(f"variant {variant!r} weights each token: policy_logps must be per-token "
                         f"[B, K], got shape {lp.shape}.")
    if lp.ndim not in (1, 2):
        raise ValueError(f"policy_logps must be [B] or [B, K], got shape {lp.shape}.")
    if variant in ("a_lol", "a_lol_seq", "a_lol_kl", "r_lol"):
        if ref_logps is None or jnp.shape(ref_logps) != lp.shape:
            raise ValueError(f"variant {variant!r} needs ref_logps of shape {lp.shape}, got "
                             f"{None if ref_logps is None else jnp.shape(ref_logps)}.")
        ref = jax.lax.stop_gradient(jnp.asarray(ref_logps, jnp.float32))
    adv = jax.lax.stop_gradient(jnp.asarray(advantages, jnp.float32))
    if variant in ADVANTAGE_VARIANTS:
        adv = jnp.maximum(adv, 0.0)
    seq = lp.sum(-1) if lp.ndim == 2 else lp  # sum_t m_t log pi(y_t | ...)

    if variant == "a_lol_seq":
        weighted = jnp.sum(clipped_weight(lp - ref, clip) * lp, -1)  # 0 off the response
    elif variant == "r_gold":
        p = jax.lax.stop_gradient(jnp.exp(lp))  # off the response lp = 0, so lp * weight = 0
        weighted = jnp.sum(jnp.maximum(p, GOLD_LOWER_BOUND) * lp, -1)
    elif variant in ("a_lol", "r_lol"):
        ref_seq = ref.sum(-1) if ref.ndim == 2 else ref
        weighted = clipped_weight(seq - ref_seq, clip) * seq
    else:  # a_lol_ref_free, a_lol_kl, wbc: weight 1
        weighted = seq
    per = -adv * weighted
    if variant == "a_lol_kl":
        ref_seq = ref.sum(-1) if ref.ndim == 2 else ref
        per = per + kl_beta * (seq - ref_seq)
    return per


def pair_advantages(chosen_reward: jax.Array, rejected_reward: jax.Array
                    ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(A_chosen, A_rejected, V) [B] with V(x) = (R_c + R_r) / 2, the mean exact reward of the
    pair's two pi_ref samples (module doc): A_c = (R_c - R_r) / 2 = -A_r."""
    rc = jnp.asarray(chosen_reward, jnp.float32)
    rr = jnp.asarray(rejected_reward, jnp.float32)
    value = 0.5 * (rc + rr)
    return rc - value, rr - value, value


def objective(variant: str) -> Objective:
    """The `Objective` of one variant on the recipe's pairs: both responses of each pair are data,
    weighted by their advantage against the pair's mean reward (or by their reward: r_lol, wbc,
    r_gold). Needs `PairBatch.chosen_reward` / `rejected_reward` [B]; reads the traced floats
    `hparams.alol_clip` (eps, default 0.9) and `hparams.alol_kl_beta` (default 0.2)."""
    if variant not in VARIANTS:
        raise ValueError(f"Unknown A-LoL variant {variant!r}; known: {', '.join(VARIANTS)}.")

    def loss(params, batch: PairBatch, hparams, config) -> tuple[jax.Array, dict]:
        del params, config
        rc = getattr(batch, "chosen_reward", None)
        rr = getattr(batch, "rejected_reward", None)
        if rc is None or rr is None:
            raise ValueError(f"A-LoL ({variant}) needs the pairs' rewards: PairBatch.chosen_reward "
                             f"and rejected_reward [B] (PreferenceData.chosen_reward / "
                             f"rejected_reward).")
        a_c, a_r, value = pair_advantages(rc, rr)
        if variant in ADVANTAGE_VARIANTS:
            weights = jnp.concatenate([a_c, a_r])
        else:
            weights = jnp.concatenate([jnp.asarray(rc, jnp.float32),
                                       jnp.asarray(rr, jnp.float32)])
        c, r = batch.policy_chosen, batch.policy_rejected
        policy = jnp.concatenate([c.token, r.token])  # [2B, K]
        ref = jnp.concatenate([batch.ref_chosen_token, batch.ref_rejected_token])
        clip = getattr(hparams, "alol_clip", 0.9)
        per = alol_loss(policy, ref, weights, variant=variant, clip=clip,
                        kl_beta=getattr(hparams, "alol_kl_beta", 0.2))
        loss_value = jnp.mean(per)
        log_ratio = policy.sum(-1) - ref.sum(-1)
        sg = jax.lax.stop_gradient
        metrics = {
            "train/loss": sg(loss_value),
            "train/advantage": sg(jnp.mean(jnp.maximum(jnp.concatenate([a_c, a_r]), 0.0))),
            "train/value": sg(jnp.mean(value)),
            "train/kl_data": sg(jnp.mean(log_ratio)),  # mean log pi/pi_ref on the data
            "train/importance_weight": sg(jnp.mean(clipped_weight(log_ratio, clip))),
            "train/logps_chosen": sg(jnp.mean(c.sum)),
            "train/logps_rejected": sg(jnp.mean(r.sum)),
        }
        return loss_value, metrics

    return Objective(no_params, loss, needs_rewards=True,
                     uses_reference=variant not in ("a_lol_ref_free", "wbc", "r_gold"))


# The recipe's names (objectives.OBJECTIVES): "alol", "alol_ref_free", "alol_seq", "alol_kl",
# "rlol", "wbc", "rgold".
ALOL_OBJECTIVES: dict[str, Objective] = {
    name.replace("a_lol", "alol").replace("r_lol", "rlol").replace("r_gold", "rgold"):
        objective(name) for name in VARIANTS}
