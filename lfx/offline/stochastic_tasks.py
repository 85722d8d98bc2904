"""Stochastic one-step tasks for future-conditioned offline RL (DoC, RCSL): the Bernoulli bandit.

The paper's bandit (Yang, Schuurmans, Abbeel & Nachum 2023, "Dichotomy of Control: Separating What You
Can Control from What You Cannot", arXiv:2210.13435, Sec. 5.1) is dice_rl's
`environments/bernoulli_bandit.py` `BernoulliBandit(num_arms=2, bernoulli_prob=alpha)`, as
google-research `dichotomy_of_control/scripts/run_tabular.py` builds it (alpha = 0.1):

    one state s = 0, two arms;  r ~ Bernoulli(mu_a),  mu = [alpha, 1 - alpha] = [0.1, 0.9]
    the episode ends after the one step (`loop=False`), so the return is the reward.

The offline data (`create_dataset.sh`: 1000 trajectories of length 1, alpha 0.1) come from dice_rl's
`get_bandit_policy(..., bernoulli_prob=alpha)`, the behaviour policy beta = [1 - alpha, alpha] =
[0.9, 0.1]: it mostly pulls the bad arm. P(a=0, r=1) = 0.9 * 0.1 = P(a=1, r=1) = 0.1 * 0.9, so half of
the observed returns of 1 are luck on the bad arm, and a policy conditioned on the return 1 picks each
arm with probability 1/2 (expected return 0.5, not the best arm's 0.9).

dice_rl samples the reward as `uniform() <= mu_a`; here it is `uniform < mu_a` (the same law).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class BanditParams:
    """A stateless stochastic bandit (traced, so a vmap over it randomises the task).

    reward_probs: [A] mu_a = P(r = 1 | a), rewards in {0, 1}.
    behaviour_probs: [A] the data-collecting policy beta(a).
    """

    reward_probs: jax.Array
    behaviour_probs: jax.Array

    @property
    def num_actions(self) -> int:
        return self.reward_probs.shape[-1]


@struct.dataclass
class ReturnDataset:
    """One-step trajectories (s, a, R) with leading axis N; the return R is the one reward.

    observations: [N] int32 state indices (all 0 in the bandit).
    actions: [N] int32 arm indices.
    returns: [N] float32 returns-to-go at t = 0 (here in {0, 1}).
    """

    observations: jax.Array
    actions: jax.Array
    returns: jax.Array


def bernoulli_bandit(alpha: float = 0.1) -> BanditParams:
    """dice_rl `BernoulliBandit(bernoulli_prob=alpha)` with `get_bandit_policy(bernoulli_prob=alpha)`."""
    alpha = jnp.asarray(alpha, jnp.float32)
    return BanditParams(reward_probs=jnp.stack([alpha, 1.0 - alpha]),
                        behaviour_probs=jnp.stack([1.0 - alpha, alpha]))


def step(key: jax.Array, params: BanditParams, action: jax.Array) -> jax.Array:
    """A sampled reward r ~ Bernoulli(mu_action); `action` a scalar int32 (vmap for a batch). Returns []."""
    return (jax.random.uniform(key) < params.reward_probs[action]).astype(jnp.float32)


def expected_return(params: BanditParams, action_probs: jax.Array) -> jax.Array:
    """The exact expected return sum_a pi(a) mu_a of a policy pi: [..., A] -> [...]."""
    return jnp.sum(action_probs * params.reward_probs, axis=-1)


def generate_dataset(key: jax.Array, params: BanditParams, num_trajectories: int = 1000) -> ReturnDataset:
    """`num_trajectories` (static) one-step episodes of the behaviour policy; deterministic in `key`."""
    action_key, reward_key = jax.random.split(key)
    actions = jax.random.categorical(action_key, jnp.log(params.behaviour_probs), shape=(num_trajectories,))
    actions = actions.astype(jnp.int32)
    rewards = jax.vmap(step, in_axes=(0, None, 0))(jax.random.split(reward_key, num_trajectories), params, actions)
    return ReturnDataset(observations=jnp.zeros((num_trajectories,), jnp.int32), actions=actions, returns=rewards)


TASKS = {"bernoulli_bandit": bernoulli_bandit}
