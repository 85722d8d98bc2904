"""IQL (lfx.offline.iql): each of the three steps of one update descends its own loss in the authors'
order (V from the target critics, the actor with the new V, Q from the new V(s')), the Polyak target,
the cosine actor learning rate against optax, vmapped seeds == a loop, validation, and the bandit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
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
    tree_max_abs_diff,
)

from lfx.offline import iql, losses
from lfx.offline.types import Spec

SMALL_LR = iql.HParams(actor_lr=1e-3, critic_lr=1e-3, value_lr=1e-3)


def test_each_step_descends_its_loss_in_the_authors_order():
    key = jax.random.key(0)
    batch = make_batch(jax.random.key(1))
    hp = SMALL_LR
    agent0 = jit_init(iql)(key, SPEC, CONFIG, hp)
    # Targets that differ from the online critics, so using the wrong ones would show.
    agent0 = agent0.replace(target_critic_params=jax.tree.map(lambda p: 0.5 * p + 0.1, agent0.target_critic_params))
    agent1, metrics = jit_update(iql)(agent0, batch, key, SPEC, CONFIG, hp)
    actor, critic, value = iql.make_networks(SPEC, CONFIG)

    @jax.jit
    def objectives(agent, target_critic_params, value_params_for_targets):
        """L_V, L_pi, L_Q of `agent` with the regression targets built from the given networks."""
        target_q = jnp.min(critic.apply(target_critic_params, batch.observations, batch.actions), axis=0)
        l_v = losses.expectile_loss(target_q - value.apply(agent.value_params, batch.observations), hp.expectile)
        adv = target_q - value.apply(value_params_for_targets, batch.observations)
        w = losses.awr_weights(adv, hp.beta, hp.max_weight)
        logp = actor.apply(agent.actor_params, batch.observations).log_prob(batch.actions)
        l_pi = losses.awr_actor_loss(logp, w)
        y = losses.value_target(batch.rewards, batch.dones,
                                value.apply(value_params_for_targets, batch.next_observations), hp.gamma)
        l_q = losses.ensemble_mse(critic.apply(agent.critic_params, batch.observations, batch.actions), y)
        return l_v, l_pi, l_q

    # Targets: the OLD target critics and the NEW value net (the V step comes first).
    before = objectives(agent0, agent0.target_critic_params, agent1.value_params)
    after = objectives(agent1, agent0.target_critic_params, agent1.value_params)
    for name, b, a in zip(("value", "actor", "critic"), before, after, strict=True):
        assert float(a) < float(b), name
    assert float(metrics["train/actor_loss"]) == pytest.approx(float(before[1]), rel=1e-5)
    assert float(metrics["train/critic_loss"]) == pytest.approx(float(before[2]), rel=1e-5)
    v_loss_old = objectives(agent0, agent0.target_critic_params, agent0.value_params)[0]
    assert float(metrics["train/value_loss"]) == pytest.approx(float(v_loss_old), rel=1e-5)
    # Polyak target every update.
    expected = jax.tree.map(lambda p, t: (1 - hp.tau) * t + hp.tau * p, agent1.critic_params,
                            agent0.target_critic_params)
    assert tree_max_abs_diff(agent1.target_critic_params, expected) < 1e-7


def test_cosine_actor_lr_matches_optax():
    schedule = optax.cosine_decay_schedule(3e-4, 1000)
    ours = iql.cosine_lr(3e-4, 1000.0)
    for count in (0, 1, 250, 500, 999, 1000, 5000):
        assert float(ours(jnp.int32(count))) == pytest.approx(float(schedule(count)), rel=1e-5, abs=1e-12)
    assert float(iql.cosine_lr(3e-4, 0.0)(jnp.int32(123))) == pytest.approx(3e-4)  # T = 0: constant


def test_the_actor_optimiser_follows_the_cosine_schedule():
    """T = 2: updates 1, 2, 3 use lr, lr/2, 0, so the third leaves the actor where it is."""
    hp = SMALL_LR.replace(actor_lr_decay_steps=2.0)
    key = jax.random.key(0)
    batch = make_batch(jax.random.key(1))
    agents = [jit_init(iql)(key, SPEC, CONFIG, hp)]
    for _ in range(3):
        agents.append(jit_update(iql)(agents[-1], batch, key, SPEC, CONFIG, hp)[0])
    assert tree_max_abs_diff(agents[2].actor_params, agents[1].actor_params) > 1e-5
    assert tree_max_abs_diff(agents[3].actor_params, agents[2].actor_params) == 0.0
    assert tree_max_abs_diff(agents[3].value_params, agents[2].value_params) > 1e-5  # V and Q keep their lr
    assert float(agents[2].actor_opt.hyperparams["learning_rate"]) == pytest.approx(0.5e-3, rel=1e-5)


def test_act_is_the_policy_mean_in_bounds():
    agent = jit_init(iql)(jax.random.key(0), SPEC, CONFIG, SMALL_LR)
    obs = make_batch(jax.random.key(1)).observations
    actor, _, _ = iql.make_networks(SPEC, CONFIG)
    np.testing.assert_array_equal(np.asarray(iql.act(agent, obs, SPEC, CONFIG)),
                                  np.asarray(actor.apply(agent.actor_params, obs).mean))
    assert float(jnp.max(jnp.abs(iql.act(agent, obs, SPEC, CONFIG)))) <= 1.0


def test_vmapped_seeds_and_hparams_equal_a_loop():
    assert_vmap_equals_loop(iql, SMALL_LR, SMALL_LR.replace(expectile=0.9, beta=1.0), num_updates=2)


def test_hparams_validate():
    iql.HParams().validate()
    iql.HParams(expectile=jnp.array([0.5, 0.7, 0.9])).validate()
    for bad in (dict(expectile=1.0), dict(expectile=0.0), dict(beta=-1.0), dict(max_weight=0.0),
                dict(actor_lr_decay_steps=-1.0), dict(gamma=float("nan"))):
        with pytest.raises(ValueError, match=next(iter(bad))):
            iql.HParams(**bad).validate()
    with pytest.raises(ValueError, match="continuous"):
        iql.init(jax.random.key(0), Spec(3, 1, discrete=True, num_actions=2), CONFIG, iql.HParams())


def test_bandit_prefers_the_rewarded_action():
    """The bandit of test_offline_td3_bc (BC's mean action ~0): IQL's advantage weights favour the
    rewarded action, so its mean action must be clearly positive. At the fixed point V = 0.7 (the
    0.7-expectile of Q in {0, 1}), weights e^{3 * 0.3} and e^{-3 * 0.7}, the weighted Gaussian fit has
    mean 0.5 (e^0.9 - e^-2.1) / (e^0.9 + e^-2.1) = 0.45. 1000 updates, batch 32, default HParams,
    seeds 0/1 (0.44 measured; 0.25 after 500 updates)."""
    data = bandit_dataset(jax.random.key(0))
    agent, metrics = train_on_dataset(iql, jax.random.key(1), data, iql.HParams(), num_updates=1000)
    mean_action = float(jnp.mean(iql.act(agent, data.observations, SPEC, CONFIG)))
    assert bool(jnp.isfinite(metrics["train/critic_loss"]))
    assert mean_action > 0.3, mean_action
