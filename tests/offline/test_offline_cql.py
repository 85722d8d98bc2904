"""lfx.offline.cql: the critic loss against a NumPy transcription of CORL's `_q_loss`, CQL with cql_alpha = 0
is SAC-N's critic, the Lagrange variant, discrete CQL against the Atari loss, one step lowers the losses,
vmap over keys == a loop, and a learning check: the penalty pushes an action the data never took below the rest."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from offline_agent_checks import (
    assert_vmap_equals_loop,
    bandit_dataset,
    jit_init,
    jit_update,
    small_batch,
    train_on_dataset,
)

from lfx.offline import cql, sac_n
from lfx.offline.types import AgentConfig, Batch, Spec
from lfx.rl import sac

SPEC = Spec(obs_dim=3, action_dim=2)
CONFIG = AgentConfig(hidden_sizes=(16,), num_critics=2, num_action_samples=3)
DSPEC = Spec(obs_dim=2, action_dim=1, discrete=True, num_actions=3)
DCONFIG = AgentConfig(hidden_sizes=(16,))
INIT = jit_init(cql)  # shared with offline_agent_checks: one compilation per (spec, config, HParams type)
UPDATE = jit_update(cql)


@pytest.fixture(scope="module")
def setup():
    agent = INIT(jax.random.key(0), SPEC, CONFIG, cql.HParams())
    agent = agent.replace(target_params=jax.tree.map(lambda x: 1.1 * x, agent.critic_params))
    return agent, small_batch(jax.random.key(1))


def _np_logsumexp(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    return (m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))).squeeze(axis)


def _np_corl_q_loss(q_pred, target, q_rand, q_cur, lp_cur, q_next, lp_next, action_dim, cql_alpha, temp,
                    alpha_prime=None, gap=0.0):
    """CORL `ContinuousCQL._q_loss` from the critics' outputs ([N, B], [N, B, K]), importance sampling on."""
    total = 0.0
    for j in range(q_pred.shape[0]):
        total += np.mean((q_pred[j] - target) ** 2)  # F.mse_loss per critic
        cat = np.concatenate([q_rand[j] - np.log(0.5**action_dim), q_next[j] - lp_next, q_cur[j] - lp_cur], axis=1)
        diff = np.mean(_np_logsumexp(cat / temp, 1) * temp - q_pred[j])
        total += cql_alpha * diff if alpha_prime is None else alpha_prime * cql_alpha * (diff - gap)
    return total


def test_critic_loss_matches_corl(setup):
    """Same samples (the keys `critic_loss` splits), the loss assembled in NumPy from the critics' outputs,
    without and with the Lagrange multiplier (alpha' = exp(1), CORL's initial log alpha' = 1)."""
    agent, batch = setup
    networks = cql.make_networks(SPEC, CONFIG)
    key, alpha, k = jax.random.key(2), jnp.float32(0.3), CONFIG.num_action_samples

    @jax.jit
    def parts(hp):
        k_next, k_rand, k_cur, k_nxt = jax.random.split(key, 4)
        pi = networks.actor.apply(agent.actor_params, batch.next_observations)
        u = pi.sample(k_next)
        y = batch.rewards + 0.95 * (1 - batch.dones) * jnp.min(
            networks.critic.apply(agent.target_params, batch.next_observations, jnp.tanh(u)), axis=0)
        rep = jnp.repeat(batch.observations[:, None], k, axis=1)
        rand = jax.random.uniform(k_rand, (6, k, 2), minval=-1.0, maxval=1.0)
        pi_s = networks.actor.apply(agent.actor_params, rep)
        u_s = pi_s.sample(k_cur)
        pi_n = networks.actor.apply(agent.actor_params, jnp.repeat(batch.next_observations[:, None], k, axis=1))
        u_n = pi_n.sample(k_nxt)
        q = lambda o, a: networks.critic.apply(agent.critic_params, o, a)  # noqa: E731
        loss, m = cql.critic_loss(agent.critic_params, agent.target_params, agent.actor_params,
                                  agent.log_alpha_prime, batch, key, alpha, networks=networks, config=CONFIG,
                                  hparams=hp)
        return (q(batch.observations, batch.actions), y, q(rep, rand), q(rep, jnp.tanh(u_s)), pi_s.log_prob(u_s),
                q(rep, jnp.tanh(u_n)), pi_n.log_prob(u_n)), loss

    for lagrange in (0.0, 1.0):
        hp = cql.HParams(gamma=0.95, cql_alpha=5.0, cql_temperature=1.3, cql_lagrange=lagrange,
                         cql_target_action_gap=0.2)
        arrays, loss = parts(hp)
        arrays = [np.asarray(a, np.float64) for a in arrays]
        want = _np_corl_q_loss(*arrays, action_dim=2, cql_alpha=5.0, temp=1.3,
                               alpha_prime=np.exp(1.0) if lagrange else None, gap=0.2)
        np.testing.assert_allclose(loss, want, rtol=1e-5)


def test_cql_alpha_zero_with_entropy_backup_is_sac_n(setup):
    agent, batch = setup
    networks = cql.make_networks(SPEC, CONFIG)
    key, alpha = jax.random.key(3), jnp.float32(0.2)

    @jax.jit
    def both(params):
        ours = jax.value_and_grad(lambda p: cql.critic_loss(
            p, agent.target_params, agent.actor_params, agent.log_alpha_prime, batch, key, alpha, networks=networks,
            config=CONFIG, hparams=cql.HParams(cql_alpha=0.0, backup_entropy=1.0))[0])(params)
        theirs = jax.value_and_grad(lambda p: sac_n.critic_loss(
            p, agent.target_params, agent.actor_params, batch, jax.random.split(key, 4)[0], alpha,
            networks=networks, hparams=sac_n.HParams(eta=0.0))[0])(params)
        return ours, theirs

    (v, g), (v_ref, g_ref) = both(agent.critic_params)
    np.testing.assert_allclose(v, v_ref, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8)


def test_one_update_lowers_losses_and_lagrange_moves_alpha_prime(setup):
    agent, batch = setup
    networks = cql.make_networks(SPEC, CONFIG)
    key = jax.random.key(4)
    k_actor, k_critic = jax.random.split(key)
    hp = cql.HParams(actor_lr=1e-3, critic_lr=1e-3, cql_lagrange=1.0, cql_target_action_gap=-50.0)

    @jax.jit
    def losses(a):
        alpha = jnp.exp(agent.log_alpha)
        c, m = cql.critic_loss(a.critic_params, agent.target_params, agent.actor_params, agent.log_alpha_prime,
                               batch, k_critic, alpha, networks=networks, config=CONFIG, hparams=hp)
        p = sac.actor_loss(a.actor_params, agent.critic_params, batch.observations, k_actor, alpha,
                           networks=networks)[0]
        return c, p, m["cql/diff"]

    new, metrics = UPDATE(agent, batch, key, SPEC, CONFIG, hp)
    (c0, p0, diff), (c1, p1, _) = losses(agent), losses(new)
    np.testing.assert_allclose(metrics["train/critic_loss"], c0, rtol=1e-5)
    assert float(c1) < float(c0) and float(p1) < float(p0)
    # D_j far above the gap: the Lagrange multiplier grows by one Adam step (lr 3e-4); without Lagrange it stays.
    assert bool(jnp.all(diff > -50.0))
    np.testing.assert_allclose(new.log_alpha_prime, agent.log_alpha_prime + 3e-4, rtol=1e-4)
    fixed, _ = UPDATE(agent, batch, key, SPEC, CONFIG, hp.replace(cql_lagrange=0.0))
    assert float(fixed.log_alpha_prime) == float(agent.log_alpha_prime)


def test_vmap_over_keys_equals_a_loop():
    """Two runs vmapped (seeds and HParams: Lagrange on, and off with cql_alpha 5) == each run alone."""
    assert_vmap_equals_loop(cql, cql.HParams(cql_lagrange=1.0), cql.HParams(cql_alpha=5.0), spec=SPEC, config=CONFIG)


def test_bandit_prefers_the_rewarded_action():
    """offline_agent_checks.bandit_dataset (+0.5 rewarded, -0.5 not, in every state): CQL's mean action must
    be clearly positive (BC's is ~0). 500 steps: actor and alpha lr 3e-4 (CORL's 3e-5 barely moves the actor
    in 500 steps) and alpha from 0.05 (the entropy bonus at 1.0 outweighs the unit reward this early).
    Bar 0.3 (TD3+BC's); measured 0.47/0.51/0.59 for seeds 1/2/3."""
    data = bandit_dataset(jax.random.key(0), spec=SPEC)
    hp = cql.HParams(actor_lr=3e-4, alpha_lr=3e-4, init_alpha=0.05)
    agent, metrics = train_on_dataset(cql, jax.random.key(1), data, hp, num_updates=500, spec=SPEC, config=CONFIG)
    mean_action = float(jnp.mean(cql.act(agent, data.observations, SPEC, CONFIG)))
    assert bool(jnp.isfinite(metrics["train/critic_loss"]))
    assert mean_action > 0.3, mean_action


# ---------------------------------------------------------------------------------------------
# Discrete CQL.


def _dbatch(key, b=8):
    k = jax.random.split(key, 4)
    return Batch(observations=jax.random.normal(k[0], (b, 2)), actions=jax.random.randint(k[1], (b,), 0, 3),
                 rewards=jax.random.normal(k[2], (b,)), next_observations=jax.random.normal(k[3], (b, 2)),
                 next_actions=jnp.zeros((b,), jnp.int32), dones=jnp.zeros((b,)).at[0].set(1.0))


def test_discrete_loss_matches_numpy_and_hard_target_updates():
    agent = INIT(jax.random.key(8), DSPEC, DCONFIG, cql.DiscreteHParams())
    agent = agent.replace(target_params=jax.tree.map(lambda x: 0.8 * x, agent.critic_params))
    batch = _dbatch(jax.random.key(9))
    net = cql.make_q_network(DSPEC, DCONFIG)
    hp = cql.DiscreteHParams(cql_alpha=2.0, gamma=0.9, target_update_period=2.0, critic_lr=1e-3)
    loss, _ = jax.jit(lambda: cql.discrete_loss(agent.critic_params, agent.target_params, batch, network=net,
                                                hparams=hp))()
    q = np.asarray(net.apply(agent.critic_params, batch.observations), np.float64)
    q_next = np.asarray(net.apply(agent.target_params, batch.next_observations), np.float64)
    a, r, d = np.asarray(batch.actions), np.asarray(batch.rewards), np.asarray(batch.dones)
    y = r + 0.9 * (1 - d) * q_next.max(1)
    err = q[np.arange(8), a] - y
    huber = np.where(np.abs(err) <= 1.0, 0.5 * err**2, np.abs(err) - 0.5)  # dopamine's huber_loss, delta 1
    want = huber.mean() + 2.0 * (np.mean(_np_logsumexp(q, 1)) - np.mean(q[np.arange(8), a]))
    np.testing.assert_allclose(loss, want, rtol=1e-5)

    one, _ = UPDATE(agent, batch, jax.random.key(0), DSPEC, DCONFIG, hp)
    two, _ = UPDATE(one, batch, jax.random.key(0), DSPEC, DCONFIG, hp)
    for t0, t1, t2, c2 in zip(*(jax.tree.leaves(x) for x in (agent.target_params, one.target_params,
                                                           two.target_params, two.critic_params))):
        np.testing.assert_array_equal(t1, t0)  # step 1 of period 2: no copy
        np.testing.assert_array_equal(t2, c2)  # step 2, tau = 1: a hard copy
    loss_after, _ = cql.discrete_loss(one.critic_params, agent.target_params, batch, network=net, hparams=hp)
    assert float(loss_after) < float(loss)
    actions = cql.act(one, batch.observations, DSPEC, DCONFIG)
    np.testing.assert_array_equal(actions, np.argmax(net.apply(one.critic_params, batch.observations), axis=1))


def test_discrete_penalty_pushes_down_an_action_the_data_never_took():
    """One-step bandit: the data holds actions 0 (reward 0) and 1 (reward 1), never 2. After 300 steps, CQL's
    Q(s, 2) lies below Q(s, 0) by more than 1 (CQL pushes unseen actions down); with cql_alpha = 0 it does
    not move from its initial value (the TD loss never sees it): |Q(s, 2) - Q(s, 0)| stays below 0.5."""
    key_s, key_a, key_eval = jax.random.split(jax.random.key(10), 3)
    obs = jax.random.normal(key_s, (256, 2))
    actions = jax.random.randint(key_a, (256,), 0, 2)
    batch = Batch(observations=obs, actions=actions, rewards=(actions == 1).astype(jnp.float32), next_observations=obs,
                  next_actions=actions, dones=jnp.ones((256,)))
    net = cql.make_q_network(DSPEC, DCONFIG)
    test_obs = jax.random.normal(key_eval, (512, 2))

    @jax.jit
    def train(hp):
        agent = cql.init(jax.random.key(11), DSPEC, DCONFIG, hp)
        agent, _ = jax.lax.scan(lambda a, _: (cql.update(a, batch, jax.random.key(0), DSPEC, DCONFIG, hp)[0], None),
                                agent, None, length=300)
        q = net.apply(agent.critic_params, test_obs)
        return jnp.mean(q[:, 2] - q[:, 0]), jnp.mean(cql.act(agent, test_obs, DSPEC, DCONFIG) == 1)

    hps = jax.tree.map(lambda *x: jnp.array(x), cql.DiscreteHParams(critic_lr=3e-3, target_update_period=1.0,
                                                                      tau=0.05),
                       cql.DiscreteHParams(critic_lr=3e-3, target_update_period=1.0, tau=0.05, cql_alpha=0.0))
    gap, greedy_is_best = jax.vmap(train)(hps)
    assert float(gap[0]) < -1.0, gap
    assert abs(float(gap[1])) < 0.5, gap
    assert float(greedy_is_best[0]) > 0.95


def test_bad_hparams_are_refused():
    with pytest.raises(ValueError, match="cql_lagrange"):
        cql.HParams(cql_lagrange=0.5).validate()
    with pytest.raises(ValueError, match="cql_clip_diff_min"):
        cql.HParams(cql_clip_diff_min=1.0, cql_clip_diff_max=0.0).validate()
    with pytest.raises(ValueError, match="cql_temperature"):
        cql.HParams(cql_temperature=0.0).validate()
    cql.HParams(cql_alpha=jnp.array([5.0, 10.0])).validate()
    with pytest.raises(ValueError, match="num_actions"):
        cql.init(jax.random.key(0), Spec(2, 1, discrete=True, num_actions=1), DCONFIG, cql.DiscreteHParams())
