"""Pure losses of BC, TD3+BC, ReBRAC and IQL: arrays in, scalar (or target array) out, no networks.

Every function is written for one minibatch (leading axis B) and an ensemble axis N first where
critics appear ([N, B], as `CriticEnsemble` returns). Stop-gradients are explicit and named.

Behaviour cloning (Pomerleau 1991; CORL `any_percent_bc.py`, Unifloral `bc.py`):
    L_BC = mean_{b, k} (pi(s_b)_k - a_{b, k})^2                          (continuous, F.mse_loss)
    L_BC = -mean_b log softmax(logits_b)[a_b]                             (discrete)

TD3 targets (Fujimoto et al. 2018, arXiv:1802.09477) and TD3+BC (Fujimoto & Gu 2021, arXiv:2106.06860;
sfujim/TD3_BC `TD3_BC.py`, CORL `algorithms/offline/td3_bc.py`):
    y     = r + gamma (1 - d) min_j Q'_j(s', a~'),  a~' = clip(pi'(s') + clip(eps, -c, c), -1, 1)
    L_Q   = sum_j mean_b (Q_j(s, a) - sg(y))^2                            (twin critics: a sum of MSEs)
    L_pi  = -lambda mean_b Q_1(s, pi(s)) + mean_{b,k} (pi(s) - a)^2,  lambda = alpha / sg(mean_b |Q_1|)

ReBRAC (Tarasov et al. 2023, arXiv:2305.09836; CORL `algorithms/offline/rebrac.py` `update_actor`,
`update_critic`, the authors' code):
    y     = r + gamma (1 - d) [min_j Q'_j(s', a~') - beta_critic ||a~' - a'||^2]     (a' = dataset next action)
    L_pi  = mean_b [beta_actor ||pi(s) - a||^2 - lambda min_j Q_j(s, pi(s))],  lambda = 1 / sg(mean_b |min_j Q_j|)
(||.||^2 sums over action dimensions, where TD3+BC's MSE averages over them.)

IQL (Kostrikov et al. 2021, arXiv:2110.06169; ikostrikov/implicit_q_learning `critic.py`, `actor.py`):
    L_V   = mean_b |tau - 1(u_b < 0)| u_b^2,  u = sg(min_j Q'_j(s, a)) - V(s)          (expectile regression)
    y     = r + gamma (1 - d) sg(V(s'))
    w     = min(exp(beta sg(min_j Q'_j(s, a) - V(s))), max_weight)                     (AWR weights, sg)
    L_pi  = -mean_b w_b log pi(a_b | s_b)

A2PR (Liu et al. 2024, arXiv:2405.19909; ltlhuuu/A2PR `A2PR.py` `A2PR.train`, the authors' code):
    t     = sg(min(r + gamma (1 - d) min_j Q'_j(s', a~'), r + gamma (1 - d) min_j Q_j(s', a~')))   (V's target)
    L_VAE = mean_{b,k} w_b (D(s, z) - a)^2 + kl_weight KL,  w_b = vae_weight 1(Q_1(s, a) > V(s)),  z ~ E(s, a)
    a^    = a~_pi if A(s, a~_pi) >= A(s, a) else a,   a~_pi = VAE reconstruction of pi(s),  A = Q_1 - V
    L_pi  = -lambda mean_b Q_1(s, pi(s)) + mean_{b,k} m_b (pi(s) - a^)^2,
            m_b = mask (1(A(s, a~_pi) >= 0) + 1(A(s, a) > 0)),  lambda = alpha / sg(mean_b |Q_1(s, pi(s))|)

Shapes: B batch, A action dimension, N critics, K discrete actions, L VAE latent size.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

sg = jax.lax.stop_gradient


# ---------------------------------------------------------------------------------------------
# Behaviour cloning.


def bc_loss(pi_action: jax.Array, data_action: jax.Array) -> jax.Array:
    """mean_{b,k} (pi_action - data_action)^2. pi_action, data_action: [B, A]. Returns []."""
    chex.assert_equal_shape([pi_action, data_action])
    return jnp.mean(jnp.square(pi_action - data_action))


def bc_discrete_loss(logits: jax.Array, data_action: jax.Array) -> jax.Array:
    """Cross-entropy -mean_b log softmax(logits_b)[a_b]. logits: [B, K]; data_action: [B] int. Returns []."""
    chex.assert_rank([logits, data_action], [2, 1])
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, data_action[:, None].astype(jnp.int32), axis=-1)[:, 0])


# ---------------------------------------------------------------------------------------------
# TD3 / TD3+BC.


def clipped_double_q_target(next_q: jax.Array, reward: jax.Array, done: jax.Array, gamma) -> jax.Array:
    """y = sg(r + gamma (1 - d) min_j next_q_j). next_q: [N, B]; reward, done: [B]. Returns [B]."""
    chex.assert_rank(next_q, 2)
    chex.assert_equal_shape([next_q[0], reward, done])
    return sg(reward + gamma * (1.0 - done) * jnp.min(next_q, axis=0))


def ensemble_mse(q: jax.Array, target: jax.Array) -> jax.Array:
    """sum_j mean_b (q_jb - sg(target_b))^2: the twin-critic loss of TD3+BC, ReBRAC and IQL (a sum over
    critics of each critic's MSE, as sfujim's `F.mse_loss(Q1, y) + F.mse_loss(Q2, y)`).
    q: [N, B]; target: [B]. Returns [].
    """
    chex.assert_rank(q, 2)
    chex.assert_equal_shape([q[0], target])
    return jnp.sum(jnp.mean(jnp.square(q - sg(target)[None]), axis=1))


def q_normalizer(q: jax.Array, scale) -> jax.Array:
    """lambda = scale / sg(mean_b |q_b|) (TD3+BC: scale = alpha; ReBRAC: scale = 1). q: [B]. Returns []."""
    return scale / sg(jnp.mean(jnp.abs(q)))


def td3_bc_actor_loss(q: jax.Array, pi_action: jax.Array, data_action: jax.Array, alpha) -> jax.Array:
    """-lambda mean_b q_b + mean_{b,k} (pi_action - data_action)^2, lambda = alpha / sg(mean |q|).

    q: [B] Q_1(s, pi(s)) (gradient flows to pi through q); pi_action, data_action: [B, A]. Returns [].
    With alpha = 0 this is `bc_loss` (value and gradient).
    """
    chex.assert_rank(q, 1)
    return -q_normalizer(q, alpha) * jnp.mean(q) + bc_loss(pi_action, data_action)


def rebrac_actor_loss(q: jax.Array, pi_action: jax.Array, data_action: jax.Array, beta_actor) -> jax.Array:
    """mean_b [beta_actor ||pi_action_b - a_b||^2 - lambda q_b], lambda = 1 / sg(mean |q|).

    q: [B] min_j Q_j(s, pi(s)); pi_action, data_action: [B, A]. Returns [] (CORL rebrac.py `update_actor`,
    `normalize_q=True`).
    """
    chex.assert_rank(q, 1)
    chex.assert_equal_shape([pi_action, data_action])
    penalty = jnp.sum(jnp.square(pi_action - data_action), axis=-1)
    return jnp.mean(beta_actor * penalty - q_normalizer(q, 1.0) * q)


def rebrac_critic_target(
    next_q: jax.Array, next_pi_action: jax.Array, next_data_action: jax.Array, reward: jax.Array,
    done: jax.Array, gamma, beta_critic,
) -> jax.Array:
    """y = sg(r + gamma (1 - d) [min_j next_q_j - beta_critic ||next_pi_action - next_data_action||^2]).

    next_q: [N, B] Q'_j(s', a~'); next_pi_action: [B, A] the smoothed target action a~'; next_data_action:
    [B, A] the dataset's a'. Returns [B]. With beta_critic = 0 this is `clipped_double_q_target`.
    """
    chex.assert_rank(next_q, 2)
    chex.assert_equal_shape([next_pi_action, next_data_action])
    penalty = jnp.sum(jnp.square(next_pi_action - next_data_action), axis=-1)
    return sg(reward + gamma * (1.0 - done) * (jnp.min(next_q, axis=0) - beta_critic * penalty))


# ---------------------------------------------------------------------------------------------
# IQL.


def expectile_loss(diff: jax.Array, expectile) -> jax.Array:
    """mean_b |tau - 1(diff_b < 0)| diff_b^2, diff = Q - V ([B]). Returns [].

    Positive residuals (Q above V) weigh tau, negative ones 1 - tau, so tau > 0.5 pushes V up towards
    an upper expectile of Q (ikostrikov `critic.py` `loss`: where(diff > 0, tau, 1 - tau) diff^2).
    tau = 0.5 gives half the mean squared error.
    """
    weight = jnp.where(diff > 0, expectile, 1.0 - expectile)
    return jnp.mean(weight * jnp.square(diff))


def value_target(reward: jax.Array, done: jax.Array, next_v: jax.Array, gamma) -> jax.Array:
    """IQL's Q target y = sg(r + gamma (1 - d) V(s')). All [B]. Returns [B]."""
    chex.assert_equal_shape([reward, done, next_v])
    return sg(reward + gamma * (1.0 - done) * next_v)


def awr_weights(adv: jax.Array, beta, max_weight) -> jax.Array:
    """w = min(exp(beta sg(adv)), max_weight). adv: [B] = Q(s, a) - V(s). Returns [B], no gradient."""
    return jnp.minimum(jnp.exp(beta * sg(adv)), max_weight)


def awr_actor_loss(log_prob: jax.Array, weights: jax.Array) -> jax.Array:
    """-mean_b sg(w_b) log pi(a_b | s_b). log_prob, weights: [B]. Returns []."""
    chex.assert_equal_shape([log_prob, weights])
    return -jnp.mean(sg(weights) * log_prob)


# ---------------------------------------------------------------------------------------------
# A2PR.


def a2pr_value_target(next_q_target: jax.Array, next_q: jax.Array, reward: jax.Array, done: jax.Array,
                      gamma) -> jax.Array:
    """A2PR's regression target of V(s): the smaller of two TD targets at the same smoothed a~'.

        t = sg(min(r + gamma (1 - d) min_j Q'_j(s', a~'),  r + gamma (1 - d) min_j Q_j(s', a~')))

    Q' the target critics (the critic step's target), Q the critics just updated (ltlhuuu/A2PR `A2PR.py`
    `train`: `target_Q`, `targ_Q`, `t_Q = torch.min(targ_Q, target_Q)`).
    next_q_target, next_q: [N, B]; reward, done: [B]. Returns [B], no gradient.
    """
    chex.assert_rank([next_q_target, next_q], 2)
    chex.assert_equal_shape([next_q_target[0], next_q[0], reward, done])
    target = reward + gamma * (1.0 - done) * jnp.min(next_q_target, axis=0)
    online = reward + gamma * (1.0 - done) * jnp.min(next_q, axis=0)
    return sg(jnp.minimum(online, target))


def gaussian_kl_loss(mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """KL(N(mean, exp(log_std)^2) || N(0, I)) per latent unit, averaged over batch and latent:

        -0.5 mean_{b,l} (1 + 2 log_std - mean^2 - exp(2 log_std))

    (BCQ's and A2PR's `KL_loss`, a mean where the KL sums over l). mean, log_std: [B, L]. Returns [].
    """
    chex.assert_equal_shape([mean, log_std])
    return -0.5 * jnp.mean(1.0 + 2.0 * log_std - jnp.square(mean) - jnp.exp(2.0 * log_std))


def a2pr_vae_loss(
    recon_action: jax.Array, data_action: jax.Array, mean: jax.Array, log_std: jax.Array, q_data: jax.Array,
    v: jax.Array, *, vae_weight, kl_weight=0.5,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """A2PR's advantage-filtered VAE loss: reconstruct only the dataset actions with positive advantage.

        L = mean_{b,k} w_b (recon_bk - a_bk)^2 + kl_weight KL(mean, log_std),  w_b = vae_weight 1(q_b > v_b)

    (ltlhuuu/A2PR `A2PR.py` `train`: `embedding = (Q_vae > value)`, `recon_loss = (weight_emb *
    torch.square(recon - action)).mean()`, `vae_loss = recon_loss + 0.5 * KL_loss`.) The mean runs over
    all B x A entries, filtered ones included. The filter is an indicator of sg(q), sg(v).

    Args:
      recon_action: [B, A] D(s, z), z = mean + exp(log_std) eps (gradient flows to the VAE).
      data_action: [B, A] the dataset's a.
      mean, log_std: [B, L] the encoder's posterior E(s, a).
      q_data: [B] Q_1(s, a) (the critic just updated); v: [B] V(s) (before its own step).
    Returns:
      (loss [], {"recon_loss", "kl_loss"}).
    """
    chex.assert_equal_shape([recon_action, data_action])
    chex.assert_equal_shape([q_data, v])
    weight = vae_weight * (sg(q_data) > sg(v)).astype(recon_action.dtype)
    recon = jnp.mean(weight[:, None] * jnp.square(recon_action - data_action))
    kl = gaussian_kl_loss(mean, log_std)
    return recon + kl_weight * kl, {"recon_loss": recon, "kl_loss": kl}


def a2pr_bc_target(data_action: jax.Array, vae_action: jax.Array, adv_data: jax.Array,
                   adv_vae: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A2PR's advantage-guided BC target and the number of candidates with non-negative advantage.

        a^_b = vae_action_b if adv_vae_b >= adv_data_b else data_action_b
        n_b  = 1(adv_vae_b >= 0) + 1(adv_data_b > 0)                          in {0, 1, 2}

    (ltlhuuu/A2PR `A2PR.py` `train`: `embedding_pi = recon_pi * (advantage_pi >= advantage_action)`,
    `embedding_action = action * (advantage_action > advantage_pi)`, `adv_pi = (Q_pi >= value)`,
    `adv_action = (Q_new > value)`; ties go to the VAE's action, and count for it but not for a.)
    data_action, vae_action: [B, A]; adv_data, adv_vae: [B]. Returns (a^ [B, A], n [B]). The choice and n
    use sg(adv); a^ carries vae_action's gradient where it is chosen.
    """
    chex.assert_equal_shape([data_action, vae_action])
    chex.assert_equal_shape([adv_data, adv_vae])
    adv_data, adv_vae = sg(adv_data), sg(adv_vae)
    target = jnp.where((adv_vae >= adv_data)[:, None], vae_action, data_action)
    count = (adv_vae >= 0).astype(data_action.dtype) + (adv_data > 0).astype(data_action.dtype)
    return target, count


def a2pr_actor_loss(
    q: jax.Array, pi_action: jax.Array, data_action: jax.Array, vae_action: jax.Array, adv_data: jax.Array,
    adv_vae: jax.Array, *, alpha, mask,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """A2PR's actor loss: TD3+BC's with an advantage-guided target and an adaptive BC weight.

        L = -lambda mean_b q_b + mean_{b,k} m_b (pi_bk - a^_bk)^2,   lambda = alpha / sg(mean_b |q_b|),
        m_b = mask n_b,  (a^, n) = a2pr_bc_target(data_action, vae_action, adv_data, adv_vae)

    (ltlhuuu/A2PR `A2PR.py` `train`: `lmbda`, `actor_loss = -lmbda * Q.mean()`, `adv = self.mask *
    (adv_pi + adv_action)`, `bc_loss = (torch.square(pi - embedding) * adv).mean()`.) `mask` scales the BC
    term; it is not a threshold. No stop-gradient on vae_action, as the authors': when the VAE's
    reconstruction of pi(s) is the target, the gradient also reaches pi through it. Where every
    adv_data > adv_vae >= 0 and mask = 0.5 this is `td3_bc_actor_loss` (value and gradient).

    Args:
      q: [B] Q_1(s, pi(s)) (gradient flows to pi through it).
      pi_action, data_action, vae_action: [B, A] pi(s), the dataset's a, the VAE's reconstruction of pi(s).
      adv_data, adv_vae: [B] Q_1(s, a) - V(s) and Q_1(s, vae_action) - V(s) (gradient stopped).
    Returns:
      (loss [], {"bc_loss", "lambda", "vae_target_frac", "bc_weight_mean"}).
    """
    chex.assert_rank(q, 1)
    chex.assert_equal_shape([pi_action, data_action])
    target, count = a2pr_bc_target(data_action, vae_action, adv_data, adv_vae)
    weight = mask * count
    lam = q_normalizer(q, alpha)
    bc = jnp.mean(weight[:, None] * jnp.square(pi_action - target))
    chose_vae = (sg(adv_vae) >= sg(adv_data)).astype(q.dtype)
    return -lam * jnp.mean(q) + bc, {"bc_loss": bc, "lambda": lam, "vae_target_frac": jnp.mean(chose_vae),
                                     "bc_weight_mean": jnp.mean(weight)}
