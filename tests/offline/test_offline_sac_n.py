"""lfx.offline.sac_n: EDAC with eta = 0 is SAC-N, SAC-N at N = 2 is lfx.rl.sac's clipped double-Q loss,
the diversity term against the EDAC authors' formula, one step lowers the losses, vmap over keys == a loop."""

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

from lfx.offline import ensemble_losses as el
from lfx.offline import sac_n
from lfx.offline.types import AgentConfig, Spec
from lfx.rl import sac

SPEC = Spec(obs_dim=3, action_dim=2)
CONFIG = AgentConfig(hidden_sizes=(16,), num_critics=3)
# The shared jitted init/update (offline_agent_checks): later calls reuse the compilation (HParams are traced).
INIT = jit_init(sac_n)
UPDATE = jit_update(sac_n)


@pytest.fixture(scope="module")
def setup():
    agent = INIT(jax.random.key(0), SPEC, CONFIG, sac_n.EDACHParams())
    # Move the targets away from the critics so the TD target is not degenerate.
    agent = agent.replace(target_params=jax.tree.map(lambda x: 1.1 * x, agent.critic_params))
    return agent, small_batch(jax.random.key(1))


def _np_edac(grads):
    n, b, _ = grads.shape
    g = grads / (np.linalg.norm(grads, axis=2, keepdims=True) + 1e-10)
    return sum(g[i, bb] @ g[j, bb] for bb in range(b) for i in range(n) for j in range(n) if i != j) / b / (n - 1)


def test_action_gradients_are_each_critics_jacobian(setup):
    agent, batch = setup
    critic = sac_n.make_networks(SPEC, CONFIG).critic

    @jax.jit
    def both(params):
        tiled = jnp.broadcast_to(batch.actions, (3,) + batch.actions.shape)
        per = sac_n.per_critic_q(critic, params, batch.observations, tiled)
        full = critic.apply(params, batch.observations, batch.actions)
        jac = jax.jacrev(lambda a: critic.apply(params, batch.observations, a).sum(axis=1))(batch.actions)
        return per, full, sac_n.action_gradients(critic, params, batch.observations, batch.actions), jac

    per, full, grads, jac = both(agent.critic_params)
    np.testing.assert_allclose(per, full, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grads, jac, rtol=1e-5, atol=1e-7)
    assert float(jnp.std(grads, axis=0).mean()) > 1e-4  # the critics differ


def test_edac_eta_zero_is_sac_n_and_eta_one_adds_the_authors_term(setup):
    agent, batch = setup
    networks = sac_n.make_networks(SPEC, CONFIG)
    key, alpha = jax.random.key(2), jnp.float32(0.4)

    def edac(params, eta):
        hp = sac_n.HParams(eta=eta, gamma=0.97)
        return sac_n.critic_loss(params, agent.target_params, agent.actor_params, batch, key, alpha,
                                 networks=networks, hparams=hp)[0]

    def sac_n_loss(params):  # SAC-N written from its parts: no diversity anywhere
        pi = networks.actor.apply(agent.actor_params, batch.next_observations)
        u = pi.sample(key)
        next_q = networks.critic.apply(agent.target_params, batch.next_observations, jnp.tanh(u))
        y = el.sac_n_target(next_q, pi.log_prob(u), batch.rewards, batch.dones, gamma=0.97, alpha=alpha)
        return el.ensemble_td_loss(networks.critic.apply(params, batch.observations, batch.actions), y)

    @jax.jit
    def run(params):
        grad_edac = jax.value_and_grad(edac)
        v0, g0 = grad_edac(params, 0.0)
        vs, gs = jax.vmap(grad_edac, in_axes=(None, 0))(params, jnp.array([0.0, 1.0]))  # lax.cond -> select
        grads = sac_n.action_gradients(networks.critic, params, batch.observations, batch.actions)
        return v0, g0, vs, gs, jax.value_and_grad(sac_n_loss)(params), grads

    v0, g0, vs, gs, (v_ref, g_ref), grads = run(agent.critic_params)
    np.testing.assert_allclose(v0, v_ref, rtol=1e-6)
    np.testing.assert_allclose(vs[0], v_ref, rtol=1e-6)
    for a, b, c in zip(jax.tree.leaves(g0), jax.tree.leaves(g_ref), jax.tree.leaves(gs)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(c[0], b, rtol=1e-5, atol=1e-8)
        assert bool(jnp.all(jnp.isfinite(c[1])))
    np.testing.assert_allclose(vs[1], v_ref + _np_edac(np.asarray(grads, np.float64)), rtol=1e-5)


def test_sac_n_at_two_critics_is_lfx_sac_clipped_double_q(setup):
    """N = 2, eta = 0: sum_j mean_b (Q_j - y)^2 = 4 * lfx.rl.sac.critic_loss (0.5 mean_{j, b}), value and gradient."""
    config = AgentConfig(hidden_sizes=(16,), num_critics=2)
    agent = INIT(jax.random.key(3), SPEC, config, sac_n.HParams(eta=0.0))
    _, batch = setup
    networks = sac_n.make_networks(SPEC, config)
    target = jax.tree.map(lambda x: 0.9 * x, agent.critic_params)
    key, alpha = jax.random.key(4), jnp.float32(0.25)
    transition = sac.Transition(obs=batch.observations, action=batch.actions, reward=batch.rewards,
                                terminated=batch.dones, next_obs=batch.next_observations)

    @jax.jit
    def both(params):
        ours = jax.value_and_grad(lambda p: sac_n.critic_loss(
            p, target, agent.actor_params, batch, key, alpha, networks=networks,
            hparams=sac_n.HParams(eta=0.0, gamma=0.95))[0])(params)
        theirs = jax.value_and_grad(lambda p: sac.critic_loss(
            p, target, agent.actor_params, transition, key, alpha, networks=networks,
            hparams=sac.HParams(gamma=0.95))[0])(params)
        return ours, theirs

    (v, g), (v_sac, g_sac) = both(agent.critic_params)
    np.testing.assert_allclose(v, 4.0 * v_sac, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_sac)):
        np.testing.assert_allclose(a, 4.0 * b, rtol=1e-5, atol=1e-8)


def test_one_update_lowers_critic_and_actor_losses(setup):
    agent, batch = setup
    hp = sac_n.EDACHParams(actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3)
    networks = sac_n.make_networks(SPEC, CONFIG)
    key = jax.random.key(5)
    k_actor, k_critic = jax.random.split(key)

    @jax.jit
    def losses(a):
        alpha = jnp.exp(agent.log_alpha)  # the pre-step alpha, for both evaluations
        c = sac_n.critic_loss(a.critic_params, agent.target_params, agent.actor_params, batch, k_critic, alpha,
                              networks=networks, hparams=hp)[0]
        p = sac.actor_loss(a.actor_params, agent.critic_params, batch.observations, k_actor, alpha,
                           networks=networks)[0]
        return c, p

    new, metrics = UPDATE(agent, batch, key, SPEC, CONFIG, hp)
    (c0, p0), (c1, p1) = losses(agent), losses(new)
    np.testing.assert_allclose(metrics["train/critic_loss"], c0, rtol=1e-5)
    assert float(c1) < float(c0) and float(p1) < float(p0)
    assert int(new.step) == 1
    # Entropy above the target (-A): the temperature goes down; the targets moved by tau towards the critics.
    assert float(new.log_alpha) < float(agent.log_alpha)
    leaf = lambda t: jax.tree.leaves(t)[0]  # noqa: E731
    np.testing.assert_allclose(leaf(new.target_params),
                               0.995 * leaf(agent.target_params) + 0.005 * leaf(new.critic_params), rtol=1e-5)


def test_vmap_over_keys_equals_a_loop():
    """Two runs vmapped in one call (seeds and HParams: EDAC eta 1, and eta 0 = SAC-N, where lax.cond becomes
    a select) == each run alone (agents and metrics, two steps)."""
    assert_vmap_equals_loop(sac_n, sac_n.EDACHParams(), sac_n.EDACHParams(eta=0.0, actor_lr=1e-3), spec=SPEC,
                            config=CONFIG)


@pytest.mark.parametrize("name, hparams, num_updates", [
    ("sac_n", sac_n.EDACHParams(init_alpha=0.05, eta=0.0), 500),  # EDACHParams: reuses EDAC's compiled update
    pytest.param("edac", sac_n.EDACHParams(init_alpha=0.05), 5000, marks=pytest.mark.slow),
])
def test_bandit_prefers_the_rewarded_action(name, hparams, num_updates):
    """Good action +0.5 (r = 1) and bad -0.5 (r = 0) in every state (offline_agent_checks.bandit_dataset): the
    deterministic action's mean must be clearly positive (> 0.3, TD3+BC's bar), where BC's is ~0. alpha starts
    at 0.05: at the default 1.0 the entropy bonus outweighs this bandit's unit reward for 500 steps.
    Measured (seeds 1/2/3): SAC-N 0.84/0.83/0.81 after 500 steps; EDAC (eta 1) 0.02/0.03/0.39 after 1500 and
    0.49/0.61/0.53 after 5000 (its normalised-gradient term dominates while dQ/da is small), hence slow."""
    data = bandit_dataset(jax.random.key(0), spec=SPEC)
    agent, metrics = train_on_dataset(sac_n, jax.random.key(1), data, hparams, num_updates=num_updates, spec=SPEC,
                                      config=CONFIG)
    mean_action = float(jnp.mean(sac_n.act(agent, data.observations, SPEC, CONFIG)))
    assert bool(jnp.isfinite(metrics["train/critic_loss"]))
    assert mean_action > 0.3, (name, mean_action)


def test_act_is_tanh_mean_in_bounds(setup):
    agent, batch = setup
    a = sac_n.act(agent, batch.observations, SPEC, CONFIG)
    pi = sac_n.make_networks(SPEC, CONFIG).actor.apply(agent.actor_params, batch.observations)
    np.testing.assert_allclose(a, jnp.tanh(pi.mean), rtol=1e-6)
    assert a.shape == (6, 2) and bool(jnp.all(jnp.abs(a) <= 1.0))


def test_bad_hparams_and_specs_are_refused():
    with pytest.raises(ValueError, match="gamma"):
        sac_n.HParams(gamma=1.5).validate()
    with pytest.raises(ValueError, match="eta"):
        sac_n.HParams(eta=-1.0).validate()
    with pytest.raises(ValueError, match="tau"):
        sac_n.HParams(tau=jnp.array([0.005, 0.0])).validate()
    sac_n.HParams(eta=jnp.array([0.0, 1.0, 5.0])).validate()  # a sweep batch passes
    with pytest.raises(ValueError, match="continuous actions"):
        sac_n.init(jax.random.key(0), Spec(4, 1, discrete=True, num_actions=3), CONFIG, sac_n.HParams())
    with pytest.raises(ValueError, match="num_critics >= 2"):
        sac_n.init(jax.random.key(0), SPEC, AgentConfig(num_critics=1), sac_n.EDACHParams())
    assert float(sac_n.HParams().eta) == 0.0 and float(sac_n.EDACHParams().eta) == 1.0
    assert float(sac_n.EDACHParams(gamma=0.9).replace(eta=2.0).eta) == 2.0
    with pytest.raises(ValueError, match="EDACHParams.eta"):
        sac_n.EDACHParams(eta=-1.0).validate()
