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

Shapes: B batch, A action dimension, N critics, K discrete actions.
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
