"""Rewards and advantages of sampled responses: the pieces every online RLHF estimator is made of.

A batch of B responses of at most K tokens, m [B, K] = 1 on response tokens (eos included), is
scored by a sequence reward s [B] (a verifier or a reward model) and carries the policy's and the
reference's per-token log-probabilities. The estimators of `lfx.pref.rlhf` combine:

* `kl_penalised_token_rewards` (Ziegler et al. 2019; TRL `PPOTrainer`): r_t = -c (log pi_t -
  log pi_ref_t) on every response token, plus s on the last one;
* `rto_token_rewards` (Zhong et al. 2024, "DPO Meets PPO: Reinforced Token Optimization",
  arXiv:2404.18922, the authors' OpenRLHF fork): r_t = clip(beta_1 (log pi_dpo_t - log pi_ref_t),
  -c, c), DPO's implicit reward spread over tokens;
* `segment_rewards` (Wu et al. 2023, "Fine-Grained Human Feedback Gives Better Rewards for
  Language Model Training", arXiv:2306.01693): a reward given at the end of every segment of the
  response for that segment, instead of once for the whole response;
* `token_gae` (Schulman et al. 2016): GAE over the response tokens with a value head, the episode
  terminating after the last token (`lfx.rl.gae.gae_advantages`, vmapped over rows);
* `group_relative_advantages` (Shao et al. 2024, DeepSeekMath's GRPO, arXiv:2402.03300; TRL
  `GRPOTrainer`): A_i = (s_i - mean_G s) / (std_G s + eps) within each prompt's group of G samples;
* `leave_one_out_advantages` (Ahmadian et al. 2024, RLOO): A_i = R_i - mean_{j != i} R_j;
* `k3_kl` (Schulman 2020, "Approximating KL divergence"): exp(q - p) - (q - p) - 1 >= 0, GRPO's
  per-token KL estimate in the loss;
* `masked_whiten`, `aggregate` (how per-token losses become one number: GRPO's mean per sequence,
  DAPO's / TRL "bnpo"'s mean over every token, or a sum per sequence).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lfx.rl.gae import gae_advantages

AGGREGATIONS = ("sequence_mean", "token_mean", "sequence_sum")


def last_token_mask(mask: jax.Array) -> jax.Array:
    """1 at each row's last response token: mask [B, K] (contiguous ones from column 0) -> [B, K]."""
    m = mask.astype(jnp.float32)
    nxt = jnp.concatenate([m[:, 1:], jnp.zeros_like(m[:, :1])], axis=1)
    return m * (1.0 - nxt)


def kl_penalised_token_rewards(scores: jax.Array, logp: jax.Array, ref_logp: jax.Array,
                               mask: jax.Array, kl_coef: float | jax.Array) -> jax.Array:
    """r_t = -kl_coef (log pi_t - log pi_ref_t) m_t + s [t = last response token].

    Args:
      scores: float [B] sequence rewards s. logp, ref_logp: float [B, K] per-token log-probs of
        the sampled tokens (no gradient is taken through them here). mask: [B, K].
    Returns:
      float32 [B, K], 0 off the response.
    """
    m = mask.astype(jnp.float32)
    return -kl_coef * (logp - ref_logp) * m + scores[:, None] * last_token_mask(m)


def segment_rewards(credit: jax.Array, mask: jax.Array, segment_len: int) -> jax.Array:
    """Fine-grained rewards: the per-token credit c_t summed over each segment of `segment_len`
    response tokens, paid at the segment's last token (the response's last token for a final
    segment cut short). credit, mask [B, K] (mask contiguous from column 0) -> [B, K]; each row's
    total is unchanged."""
    m = mask.astype(jnp.float32)
    K = credit.shape[1]
    col = jnp.arange(K)
    seg = col // segment_len
    totals = jax.vmap(lambda row: jax.ops.segment_sum(row, seg, num_segments=-(-K // segment_len)))(
        credit * m)  # [B, num_segments]
    last = jnp.sum(m, axis=1, keepdims=True) - 1  # [B, 1] the response's last column
    pay_col = jnp.minimum(jnp.minimum((seg + 1) * segment_len - 1, K - 1)[None, :], last)
    return jnp.where((col[None, :] == pay_col) & (m > 0), totals[:, seg], 0.0)


def rto_token_rewards(dpo_logp: jax.Array, ref_logp: jax.Array, mask: jax.Array, *,
                      beta: float | jax.Array, clip: float | jax.Array) -> jax.Array:
    """RTO's token reward clip(beta (log pi_dpo_t - log pi_ref_t), -clip, clip) m_t: [B, K] -> [B, K].

    The authors' defaults: beta_1 = 0.05, clip 0.05 (`lfx/FACTS`: their OpenRLHF fork)."""
    return jnp.clip(beta * (dpo_logp - ref_logp), -clip, clip) * mask.astype(jnp.float32)


def token_gae(rewards: jax.Array, values: jax.Array, mask: jax.Array, *, gamma: float | jax.Array,
              lam: float | jax.Array) -> tuple[jax.Array, jax.Array]:
    """GAE(gamma, lambda) over response tokens, terminating after each row's last token.

        delta_t = r_t + gamma V_{t+1} m_{t+1} - V_t,    A_t = delta_t + gamma lam m_{t+1} A_{t+1}

    (TRL `PPOTrainer`: values and rewards past the response are zero). V_t is the value of the
    state before token t is emitted.

    Args:
      rewards, values: float [B, K]; mask [B, K].
    Returns:
      (advantages [B, K], returns = advantages + values [B, K]), both 0 off the response.
    """
    m = mask.astype(jnp.float32)
    v = values * m
    r = rewards * m
    next_m = jnp.concatenate([m[:, 1:], jnp.zeros_like(m[:, :1])], axis=1)
    next_v = jnp.concatenate([v[:, 1:], jnp.zeros_like(v[:, :1])], axis=1)
    ends = next_m == 0
    adv, _ = jax.vmap(lambda r_, v_, nv, e: gae_advantages(r_, v_, nv, e, e, gamma=gamma,
                                                           gae_lambda=lam))(r, v, next_v, ends)
    adv = adv * m
    return adv, (adv + v) * m


def masked_mean(x: jax.Array, mask: jax.Array, axis=None) -> jax.Array:
    m = mask.astype(jnp.float32)
    return jnp.sum(x * m, axis=axis) / jnp.maximum(jnp.sum(m, axis=axis), 1.0)


def masked_whiten(x: jax.Array, mask: jax.Array, *, shift_mean: bool = True,
                  eps: float = 1e-8) -> jax.Array:
    """(x - mean) / sqrt(var + eps) over the masked entries (TRL `masked_whiten`, unbiased var),
    0 off the mask; shift_mean=False adds the mean back (TRL's reward whitening)."""
    m = mask.astype(jnp.float32)
    mean = masked_mean(x, m)
    n = jnp.sum(m)
    var = jnp.sum(((x - mean) ** 2) * m) / jnp.maximum(n, 1.0)
    var = var * n / jnp.maximum(n - 1.0, 1.0)  # Bessel's correction, as TRL's masked_var
    out = (x - mean) * jax.lax.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * m


def group_relative_advantages(scores: jax.Array, *, scale: bool = True,
                              eps: float = 1e-4) -> jax.Array:
    """GRPO's outcome advantages over the last axis (one prompt's G samples): [..., G] -> [..., G].

    A_i = (s_i - mean s) / (std s + eps), std with Bessel's correction (torch's default, TRL
    `GRPOTrainer`); scale=False gives Dr. GRPO's s_i - mean s (Liu et al. 2025)."""
    centred = scores - scores.mean(-1, keepdims=True)
    if not scale:
        return centred
    return centred / (jnp.std(scores, axis=-1, ddof=1, keepdims=True) + eps)


def leave_one_out_advantages(returns: jax.Array) -> jax.Array:
    """A_i = R_i - mean_{j != i} R_j over the last axis: returns [..., k] -> [..., k]."""
    k = returns.shape[-1]
    total = returns.sum(-1, keepdims=True)
    return returns - (total - returns) / (k - 1)


def k3_kl(logp: jax.Array, ref_logp: jax.Array) -> jax.Array:
    """exp(ref - logp) - (ref - logp) - 1 per token (>= 0, unbiased for KL(pi || pi_ref) under pi)."""
    d = ref_logp - logp
    return jnp.exp(d) - d - 1.0


def aggregate(per_token: jax.Array, mask: jax.Array, how: str) -> jax.Array:
    """One loss from per-token losses [B, K]:

        sequence_mean   mean_b (sum_t m l / sum_t m)      GRPO (Shao et al. 2024)
        token_mean      sum_bt m l / sum_bt m             DAPO / TRL "bnpo"; TRL PPO's masked_mean
        sequence_sum    mean_b sum_t m l                  REINFORCE / RLOO on log pi(y | x)
    """
    m = mask.astype(jnp.float32)
    if how == "sequence_mean":
        return jnp.mean(jnp.sum(per_token * m, -1) / jnp.maximum(jnp.sum(m, -1), 1.0))
    if how == "token_mean":
        return masked_mean(per_token, m)
    if how == "sequence_sum":
        return jnp.mean(jnp.sum(per_token * m, -1))
    raise ValueError(f"Unknown aggregation {how!r}; choose from {AGGREGATIONS}.")
