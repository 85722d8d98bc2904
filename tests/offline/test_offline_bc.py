"""BC (lfx.offline.bc): the update descends the BC loss (continuous MSE and discrete cross-entropy, each
against NumPy), vmapped seeds == a loop, a learning threshold on a tanh-linear expert, BC averages a
bandit's two actions, HParams validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from offline_agent_checks import (
    CONFIG,
    SPEC,
    assert_vmap_equals_loop,
    bandit_dataset,
    jit_init,
    jit_update,
    make_batch,
    train_on_dataset,
)

from lfx.offline import bc
from lfx.offline.types import Batch, Spec

DISCRETE = Spec(obs_dim=3, action_dim=1, discrete=True, num_actions=4)


def test_update_descends_the_numpy_mse():
    key = jax.random.key(0)
    batch = make_batch(jax.random.key(1))
    hp = bc.HParams(lr=1e-3)
    agent0 = jit_init(bc)(key, SPEC, CONFIG, hp)
    agent1, m1 = jit_update(bc)(agent0, batch, key, SPEC, CONFIG, hp)
    _, m2 = jit_update(bc)(agent1, batch, key, SPEC, CONFIG, hp)
    pi = np.asarray(bc.act(agent0, batch.observations, SPEC, CONFIG))
    assert float(m1["train/bc_loss"]) == pytest.approx(np.mean((pi - np.asarray(batch.actions)) ** 2), rel=1e-5)
    assert float(m2["train/bc_loss"]) < float(m1["train/bc_loss"])  # the loss of agent1 on the same batch
    assert np.all(np.abs(pi) <= 1.0)


def test_discrete_update_descends_the_numpy_cross_entropy_and_acts_greedily():
    key = jax.random.key(0)
    batch = make_batch(jax.random.key(1), DISCRETE)
    hp = bc.HParams(lr=1e-3)
    agent0 = jit_init(bc)(key, DISCRETE, CONFIG, hp)
    agent1, m1 = jit_update(bc)(agent0, batch, key, DISCRETE, CONFIG, hp)
    _, m2 = jit_update(bc)(agent1, batch, key, DISCRETE, CONFIG, hp)
    logits = np.asarray(bc.make_actor(DISCRETE, CONFIG).apply(agent0.actor_params, batch.observations), np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -np.mean(logp[np.arange(len(logp)), np.asarray(batch.actions)])
    assert float(m1["train/bc_loss"]) == pytest.approx(ce, rel=1e-5)
    assert float(m2["train/bc_loss"]) < float(m1["train/bc_loss"])
    action = bc.act(agent0, batch.observations, DISCRETE, CONFIG)
    assert action.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(action), logits.argmax(-1))


def test_vmapped_seeds_and_hparams_equal_a_loop():
    assert_vmap_equals_loop(bc, bc.HParams(), bc.HParams(lr=1e-2), num_updates=2)


def test_learns_a_tanh_linear_expert():
    """a = tanh(W s) for a fixed W: 400 Adam steps (lr 3e-3, batch 32, seed 0) bring the MSE on the
    dataset from ~0.3 (a random init) below 0.01."""
    obs = jax.random.normal(jax.random.key(0), (512, 3))
    w = jnp.array([[0.8, -0.5], [0.3, 0.9], [-0.6, 0.2]])
    actions = jnp.tanh(obs @ w)
    data = Batch(obs, actions, jnp.zeros(512), obs, actions, jnp.zeros(512))
    agent, _ = train_on_dataset(bc, jax.random.key(1), data, bc.HParams(lr=3e-3), num_updates=400)
    mse = float(jnp.mean(jnp.square(bc.act(agent, obs, SPEC, CONFIG) - actions)))
    assert mse < 0.01, mse


def test_averages_the_two_actions_of_the_bandit():
    """BC ignores rewards: on the bandit (+0.5 rewarded, -0.5 not, equally often) its mean action is ~0."""
    data = bandit_dataset(jax.random.key(0))
    agent, _ = train_on_dataset(bc, jax.random.key(1), data, bc.HParams(), num_updates=500)
    mean_action = float(jnp.mean(bc.act(agent, data.observations, SPEC, CONFIG)))
    assert abs(mean_action) < 0.1, mean_action


def test_hparams_validate():
    bc.HParams().validate()
    bc.HParams(lr=jnp.array([1e-4, 3e-4])).validate()
    for lr in (0.0, -1e-3, float("inf")):
        with pytest.raises(ValueError, match="lr"):
            bc.HParams(lr=lr).validate()
