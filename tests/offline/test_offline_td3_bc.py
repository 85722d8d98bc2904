"""TD3+BC (lfx.offline.td3_bc): one update against its losses, the delayed actor, alpha -> 0 is BC,
vmapped seeds == a loop, HParams validation, and a bandit where the rewards must matter."""

import jax
import jax.numpy as jnp
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

from lfx.offline import bc, losses, td3_bc
from lfx.offline.types import Spec

SMALL_LR = td3_bc.HParams(actor_lr=1e-3, critic_lr=1e-3)


def _two_updates(hparams, key=jax.random.key(0), same_key=True):
    batch = make_batch(jax.random.key(1))
    agent0 = jit_init(td3_bc)(key, SPEC, CONFIG, hparams)
    agent1, m1 = jit_update(td3_bc)(agent0, batch, key, SPEC, CONFIG, hparams)
    agent2, m2 = jit_update(td3_bc)(agent1, batch, key if same_key else jax.random.key(9), SPEC, CONFIG, hparams)
    return batch, (agent0, agent1, agent2), (m1, m2)


def test_critic_step_lowers_the_critic_loss_and_the_actor_waits():
    _, (agent0, agent1, agent2), (m1, m2) = _two_updates(SMALL_LR)
    # Step 0 of policy_freq 2 (sfujim: total_it = 1): critics move, actor and targets do not.
    assert float(m1["train/actor_updated"]) == 0.0
    assert float(m1["train/actor_loss"]) == 0.0  # no actor step yet
    assert tree_max_abs_diff(agent1.actor_params, agent0.actor_params) == 0.0
    assert tree_max_abs_diff(agent1.target_critic_params, agent0.target_critic_params) == 0.0
    assert tree_max_abs_diff(agent1.critic_params, agent0.critic_params) > 0.0
    # So update 2, with the same batch and key (same targets and smoothing noise), reports the critic
    # loss of the critics after update 1: lower than before.
    assert float(m2["train/critic_loss"]) < float(m1["train/critic_loss"])
    assert int(agent1.step) == 1 and int(agent2.step) == 2


def test_actor_step_lowers_the_actor_loss_and_moves_the_targets_by_tau():
    batch, (_, agent1, agent2), (_, m2) = _two_updates(SMALL_LR)
    assert float(m2["train/actor_updated"]) == 1.0
    actor, critic = td3_bc.make_networks(SPEC, CONFIG)
    lam = float(m2["train/lambda"])  # lambda = alpha / sg(mean |Q|): a constant of the actor's objective

    @jax.jit
    def objective(actor_params, critic_params):
        pi = actor.apply(actor_params, batch.observations)
        q = critic.apply(critic_params, batch.observations, pi)[0]
        return -lam * jnp.mean(q) + losses.bc_loss(pi, batch.actions), td3_bc.actor_loss(
            actor_params, critic_params, batch, actor=actor, critic=critic, hparams=SMALL_LR)[0]

    before, reported = objective(agent1.actor_params, agent2.critic_params)  # the actor sees the new critics
    after, _ = objective(agent2.actor_params, agent2.critic_params)
    assert float(m2["train/actor_loss"]) == pytest.approx(float(reported), rel=1e-5)
    assert float(before) == pytest.approx(float(reported), rel=1e-5)
    assert float(after) < float(before)
    tau = SMALL_LR.tau
    for new, old, target in ((agent2.critic_params, agent1.target_critic_params, agent2.target_critic_params),
                             (agent2.actor_params, agent1.target_actor_params, agent2.target_actor_params)):
        expected = jax.tree.map(lambda p, t: (1 - tau) * t + tau * p, new, old)
        assert tree_max_abs_diff(target, expected) < 1e-7
        assert tree_max_abs_diff(target, old) > 0.0


def test_the_target_uses_the_target_networks_and_clipped_noise():
    """critic_loss composes: a~' = clip(pi'(s') + clip(sigma eps, -c, c), -1, 1) with the TARGET actor,
    min over the TARGET critics, then the sum of per-critic MSEs (with targets != online networks)."""
    key = jax.random.key(0)
    batch = make_batch(jax.random.key(1))
    agent = jit_init(td3_bc)(key, SPEC, CONFIG, SMALL_LR)
    agent = agent.replace(target_actor_params=jax.tree.map(lambda p: 1.5 * p + 0.05, agent.target_actor_params),
                          target_critic_params=jax.tree.map(lambda p: 0.7 * p - 0.02, agent.target_critic_params))
    _, metrics = jit_update(td3_bc)(agent, batch, key, SPEC, CONFIG, SMALL_LR)
    actor, critic = td3_bc.make_networks(SPEC, CONFIG)

    @jax.jit
    def by_hand(agent):
        mu = actor.apply(agent.target_actor_params, batch.next_observations)
        eps = jax.random.normal(key, mu.shape)  # the key update() hands to critic_loss
        a_next = jnp.clip(mu + jnp.clip(0.2 * eps, -0.5, 0.5), -1.0, 1.0)
        q_next = critic.apply(agent.target_critic_params, batch.next_observations, a_next)
        y = batch.rewards + 0.99 * (1.0 - batch.dones) * jnp.minimum(q_next[0], q_next[1])
        q = critic.apply(agent.critic_params, batch.observations, batch.actions)
        return jnp.mean((q[0] - y) ** 2) + jnp.mean((q[1] - y) ** 2)

    assert float(metrics["train/critic_loss"]) == pytest.approx(float(by_hand(agent)), rel=1e-5)
    online = agent.replace(target_actor_params=agent.actor_params, target_critic_params=agent.critic_params)
    assert abs(float(by_hand(online)) - float(by_hand(agent))) > 1e-3  # the check can tell them apart


def test_smoothing_noise_is_clipped_then_the_action():
    a = jnp.array([[0.9, -0.2], [0.0, 0.0]])
    noisy = jax.jit(td3_bc.smoothed_target_action)(jax.random.key(0), jnp.tile(a, (500, 1)), 100.0, 0.5)
    diff = noisy - jnp.tile(a, (500, 1))
    assert float(jnp.max(noisy)) == 1.0 and float(jnp.min(noisy)) >= -1.0
    assert float(jnp.max(jnp.abs(diff))) == pytest.approx(0.5)  # sigma 100: the clip at c = 0.5 binds


def test_alpha_zero_actor_step_is_the_bc_step():
    """With alpha = 0 the TD3+BC actor gradient is BC's: one actor step lands on BC's parameters."""
    hp = td3_bc.HParams(alpha=0.0, actor_lr=1e-2)
    batch, (_, agent1, agent2), _ = _two_updates(hp)
    bc_agent = bc.AgentState(actor_params=agent1.actor_params, actor_opt=agent1.actor_opt, step=jnp.int32(0))
    bc_new, _ = jit_update(bc)(bc_agent, batch, jax.random.key(0), SPEC, CONFIG, bc.HParams(lr=1e-2))
    assert tree_max_abs_diff(agent2.actor_params, agent1.actor_params) > 1e-4
    assert tree_max_abs_diff(agent2.actor_params, bc_new.actor_params) < 1e-6


def test_vmapped_seeds_and_hparams_equal_a_loop():
    assert_vmap_equals_loop(td3_bc, SMALL_LR, SMALL_LR.replace(alpha=0.5, tau=0.05), num_updates=2)


def test_hparams_validate():
    td3_bc.HParams().validate()
    td3_bc.HParams(alpha=jnp.array([0.0, 2.5, 10.0])).validate()  # a sweep batch
    for bad in (dict(tau=0.0), dict(gamma=1.5), dict(alpha=-1.0), dict(actor_lr=float("nan")),
                dict(noise_clip=-0.1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            td3_bc.HParams(**bad).validate()
    jax.jit(lambda hp: hp.validate() or hp.alpha)(td3_bc.HParams())  # skipped for tracers


def test_discrete_spec_is_refused():
    with pytest.raises(ValueError, match="continuous"):
        td3_bc.init(jax.random.key(0), Spec(obs_dim=3, action_dim=1, discrete=True, num_actions=4), CONFIG,
                    td3_bc.HParams())


def test_bandit_prefers_the_rewarded_action():
    """Good action +0.5 (r = 1) and bad -0.5 (r = 0) in every state: TD3+BC's mean action must be
    clearly positive where BC's is ~0 (test_offline_bc). 500 updates, batch 32, seeds 0/1."""
    data = bandit_dataset(jax.random.key(0))
    agent, metrics = train_on_dataset(td3_bc, jax.random.key(1), data, td3_bc.HParams(), num_updates=500)
    mean_action = float(jnp.mean(td3_bc.act(agent, data.observations, SPEC, CONFIG)))
    assert bool(jnp.isfinite(metrics["train/critic_loss"]))
    assert mean_action > 0.3, mean_action
