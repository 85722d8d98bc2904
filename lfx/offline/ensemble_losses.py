"""Pure losses of the conservative and ensemble critics: CQL (continuous, discrete), SAC-N, EDAC.

Arrays in, scalar out; the caller applies the networks and vmaps over critics. Shapes: B = batch
size, K = actions sampled per state, N = ensemble size, A = action dimension.

CQL(H) (Kumar et al. 2020, "Conservative Q-Learning for Offline Reinforcement Learning",
arXiv:2006.04779), for one critic Q, pushes Q down on actions the data does not support:

    penalty = E_{s~D}[ log sum_a exp Q(s, a) - E_{a~D(.|s)} Q(s, a) ]                    (CQL(H))

The log-sum-exp over a continuous action box is estimated by importance sampling from K uniform
actions, K actions of pi(.|s) and K actions of pi(.|s') (all evaluated at s), as the authors' code
(aviralkumar2907/CQL `d4rl/rlkit/torch/sac/cql.py`, `min_q_version=3`) and CORL
(corl-team/CORL `algorithms/offline/cql.py`, `ContinuousCQL._q_loss`) do:

    lse(s) = T log sum_k exp( [Q(s, a_k^unif) - log 0.5^A,  Q(s, a_k^{pi(s')}) - log pi(a_k|s'),
                                Q(s, a_k^{pi(s)}) - log pi(a_k|s)] / T )                   [3K terms]
    penalty = mean_b clip( lse(s_b) - Q(s_b, a_b), clip_min, clip_max )

The pi(.|s') actions enter at the *current* state s: a proposal distribution like any other, as in
the authors' code and CORL (Unifloral evaluates them at s', which then is no longer an estimate of
the log-sum-exp at s). Without importance sampling (CQL(rho), `min_q_version=2`) the 3K + 1 raw
values [Q(s, a^unif), Q(s, a_data), Q(s, a^{pi(s')}), Q(s, a^{pi(s)})] enter the log-sum-exp.

`cql_expectation_penalty` is the E_pi[Q] - E_D[Q] form (CQL's first objective, eq. (1) of the
paper): zero when the policy's actions are the dataset's. `discrete_cql_penalty` is the Atari
version: mean_b [ logsumexp_a Q(s_b, a) - Q(s_b, a_b) ] over the Q-network's discrete outputs
(aviralkumar2907/CQL `atari/batch_rl/multi_head/quantile_agent.py`, the lines after "Add the CQL loss").

SAC-N / EDAC (An et al. 2021, "Uncertainty-Based Offline Reinforcement Learning with Diversified
Q-Ensemble", arXiv:2110.01548) clip by the minimum over N critics and, for EDAC, diversify the
ensemble's action-gradients (snu-mllab/EDAC `lifelong_rl/trainers/q_learning/sac.py`, L160-205):

    y          = r + gamma (1 - d) ( min_j Q'_j(s', a') - alpha log pi(a'|s') ),  a' ~ pi(.|s')
    L_TD       = sum_j mean_b ( Q_j(s_b, a_b) - y_b )^2
    g_j(s, a)  = grad_a Q_j(s, a) / ( ||grad_a Q_j(s, a)||_2 + 1e-10 )
    L_div      = mean_b sum_{i != j} < g_i(s_b, a_b), g_j(s_b, a_b) > / (N - 1)
    L_critic   = L_TD + eta L_div                                        (eta = 0: SAC-N)

`temperature_loss` is the authors' (and CORL's) entropy-temperature loss on log alpha:
-mean( log_alpha * sg(log pi(a|s) + H_target) ). lfx.rl.sac's `alpha_loss` uses exp(log_alpha)
instead (brax); the sign of the gradient is the same, its size differs by the factor alpha.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np


def cql_logsumexp_penalty(
    q_data: jax.Array,
    q_random: jax.Array,
    q_current: jax.Array,
    log_pi_current: jax.Array,
    q_next: jax.Array,
    log_pi_next: jax.Array,
    *,
    action_dim: int,
    temperature: jax.Array | float = 1.0,
    clip_min: jax.Array | float = -jnp.inf,
    clip_max: jax.Array | float = jnp.inf,
    importance_sample: bool = True,
) -> jax.Array:
    """CQL(H)'s penalty for one critic: mean_b clip(T lse(./T) - Q(s_b, a_b)) (module docstring).

    Args:
      q_data: [B] Q(s, a) at the dataset's actions (gradient flows).
      q_random: [B, K] Q(s, a) at uniform actions in [-1, 1]^A.
      q_current: [B, K] Q(s, a) at a ~ pi(.|s); `log_pi_current` [B, K] their log-densities.
      q_next: [B, K] Q(s, a) at a ~ pi(.|s') (evaluated at s); `log_pi_next` [B, K].
      action_dim: A, for the uniform density log 0.5^A.
      temperature: T of the log-sum-exp (CORL's cql_temp, 1.0).
      clip_min, clip_max: bounds on lse - Q(s, a) per state (CORL: -inf, inf).
      importance_sample: subtract the proposals' log-densities (CQL(H)); False: the raw 3K + 1
        values including q_data (CQL(rho), CORL's `cql_importance_sample=False`).

    The log-densities are constants (gradient stopped here), as CORL detaches them.
    The sum over the 3K samples is not divided by 3K (nor by K in CQL(rho)), as in CORL and the
    authors' code: a constant log(3K) that no gradient sees. With Q = 0 and every proposal uniform
    (log-density log 0.5^A) the penalty is log(2^A) + log(3K), the box's log-volume plus that constant.
    Returns: [] the penalty.
    """
    chex.assert_rank(q_data, 1)
    chex.assert_rank([q_random, q_current, log_pi_current, q_next, log_pi_next], 2)
    chex.assert_equal_shape([q_current, log_pi_current, q_next, log_pi_next])
    log_pi_current = jax.lax.stop_gradient(log_pi_current)
    log_pi_next = jax.lax.stop_gradient(log_pi_next)
    if importance_sample:
        random_density = np.log(0.5**action_dim)
        cat = jnp.concatenate([q_random - random_density, q_next - log_pi_next,
                               q_current - log_pi_current], axis=1)
    else:
        cat = jnp.concatenate([q_random, q_data[:, None], q_next, q_current], axis=1)
    ood = jax.nn.logsumexp(cat / temperature, axis=1) * temperature
    return jnp.mean(jnp.clip(ood - q_data, clip_min, clip_max))


def cql_expectation_penalty(q_data: jax.Array, q_policy: jax.Array) -> jax.Array:
    """E_{s~D}[ E_{a~pi(.|s)} Q(s, a) - Q(s, a_D) ]: CQL's E_pi[Q] - E_D[Q] form (eq. (1)).

    Args:
      q_data: [B] Q at the dataset's actions. q_policy: [B, K] Q at K actions of the policy.
    Returns: [] mean_b ( mean_k q_policy[b, k] - q_data[b] ); zero when the policy's actions
      are the dataset's.
    """
    chex.assert_rank(q_data, 1)
    chex.assert_rank(q_policy, 2)
    return jnp.mean(jnp.mean(q_policy, axis=1) - q_data)


def discrete_cql_penalty(q_values: jax.Array, actions: jax.Array) -> jax.Array:
    """mean_b [ logsumexp_a Q(s_b, a) - Q(s_b, a_b) ] (CQL's Atari loss, `quantile_agent.py`).

    Args:
      q_values: [B, num_actions] Q(s, .). actions: [B] int dataset actions.
    Returns: [] the penalty, >= 0, and log(num_actions) when Q(s, .) is constant.
    """
    chex.assert_rank(q_values, 2)
    chex.assert_rank(actions, 1)
    q_data = jnp.take_along_axis(q_values, actions[:, None].astype(jnp.int32), axis=1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(q_values, axis=1)) - jnp.mean(q_data)


def sac_n_target(
    next_q: jax.Array, next_log_prob: jax.Array, rewards: jax.Array, dones: jax.Array, *,
    gamma: jax.Array | float, alpha: jax.Array | float, entropy_backup: bool = True,
) -> jax.Array:
    """y = r + gamma (1 - d) ( min_j Q'_j(s', a') - alpha log pi(a'|s') ), gradient stopped.

    Args:
      next_q: [N, B] target critics at (s', a'), a' ~ pi(.|s'). next_log_prob: [B] log pi(a'|s').
      rewards, dones: [B]. entropy_backup: False drops the -alpha log pi term (CQL in CORL,
        `backup_entropy=False`).
    Returns: [B] the TD target.
    """
    chex.assert_rank(next_q, 2)
    chex.assert_rank([next_log_prob, rewards, dones], 1)
    next_v = jnp.min(next_q, axis=0)
    if entropy_backup:
        next_v = next_v - alpha * next_log_prob
    return jax.lax.stop_gradient(rewards + gamma * (1.0 - dones) * next_v)


def ensemble_td_loss(q: jax.Array, target: jax.Array) -> jax.Array:
    """sum_j mean_b (Q_j(s_b, a_b) - y_b)^2: each critic's MSE, summed over the ensemble.

    The sum (not the mean) over critics is what the EDAC authors, CORL and Unifloral minimise, so
    eta weighs the diversity term against every critic's full MSE. lfx.rl.sac's `critic_loss` is
    brax's 0.5 mean_{j, b}: at N critics the two differ by the constant factor 2N.

    Args: q: [N, B]. target: [B] (gradient stopped by the caller).
    """
    chex.assert_rank(q, 2)
    chex.assert_rank(target, 1)
    return jnp.sum(jnp.mean(jnp.square(q - target[None]), axis=1))


def edac_diversity(action_grads: jax.Array, eps: float = 1e-10) -> jax.Array:
    """EDAC's ensemble-gradient diversity: mean_b sum_{i != j} <g_i, g_j> / (N - 1).

    g_j = grad_a Q_j(s_b, a_b) / (||grad_a Q_j(s_b, a_b)|| + eps) (the authors' eps 1e-10; Unifloral
    uses 1e-6). Each term is a cosine similarity; since sum_{i != j} <g_i, g_j> = ||sum_j g_j||^2 - N for unit g_j,
    the loss lies in [-N / (N - 1), N] (N: all gradients aligned).

    Args:
      action_grads: [N, B, A] dQ_j/da at the dataset's (s, a), differentiable in the critics'
        parameters (the gradient of the loss flows through them, as `create_graph=True` in torch).
    Returns: [] the diversity loss (N >= 2).
    """
    chex.assert_rank(action_grads, 3)
    num_critics = action_grads.shape[0]
    if num_critics < 2:
        raise ValueError(f"EDAC's diversity term needs num_critics >= 2, got {num_critics}.")
    sq = jnp.sum(jnp.square(action_grads), axis=-1, keepdims=True)
    # sqrt with a zero gradient at 0 (torch's norm backward); jnp.linalg.norm's is NaN there.
    norm = jnp.where(sq > 0, jnp.sqrt(jnp.where(sq > 0, sq, 1.0)), 0.0)
    g = action_grads / (norm + eps)
    g = jnp.swapaxes(g, 0, 1)  # [B, N, A]
    gram = jnp.einsum("bik,bjk->bij", g, g)
    off_diagonal = (1.0 - jnp.eye(num_critics, dtype=gram.dtype)) * gram
    return jnp.mean(jnp.sum(off_diagonal, axis=(1, 2))) / (num_critics - 1)


def temperature_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy: jax.Array | float) -> jax.Array:
    """-mean( log_alpha * sg(log pi(a|s) + H_target) ): the EDAC authors' / CORL's alpha loss.

    Args: log_alpha: []. log_prob: [B] log pi(a|s), a ~ pi(.|s). target_entropy: H_target = -A.
    """
    chex.assert_rank(log_prob, 1)
    return -jnp.mean(log_alpha * jax.lax.stop_gradient(log_prob + target_entropy))
