"""A2PR (lfx.offline.a2pr): its losses against NumPy transcriptions of the authors' PyTorch code
(ltlhuuu/A2PR `A2PR.py` `A2PR.train`), identities (TD3+BC's actor loss, MSE value loss, KL at the prior),
the VAE network, each step of one update in the authors' order, vmapped seeds == a loop, validation,
and the bandit where the rewards must matter."""

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
    tree_max_abs_diff,
)

from lfx.offline import a2pr, losses, td3_bc
from lfx.offline.networks import ConditionalVAE
from lfx.offline.types import Spec

# vae_lr 1e-4: Adam's first step moves each of the VAE's ~1.1M weights by about lr, too far for a
# one-step descent check at 1e-3 (the authors' lr, fine over many steps: the bandit test).
SMALL_LR = a2pr.HParams(actor_lr=1e-3, critic_lr=1e-3, value_lr=1e-3, vae_lr=1e-4)
B, A, L = 5, 2, 4


def _rng(seed=0):
    return np.random.default_rng(seed)


# --- NumPy transcriptions of A2PR.py `A2PR.train` (torch tensors [B, 1] / [B, A] -> numpy). ------------


def np_value_target(target_q1, target_q2, next_q1, next_q2, reward, not_done, discount):
    """target_Q = torch.min(target_Q1, target_Q2); target_Q = reward + not_done * self.discount * target_Q;
    next_Q = torch.min(next_current_Q1, next_current_Q2); targ_Q = reward + not_done * self.discount * next_Q;
    t_Q = torch.min(targ_Q, target_Q)."""
    target_q = np.minimum(target_q1, target_q2)
    target_q = reward + not_done * discount * target_q
    next_q = np.minimum(next_q1, next_q2)
    targ_q = reward + not_done * discount * next_q
    return np.minimum(targ_q, target_q)


def np_vae_loss(recon, action, mean, std, q_vae, value, vae_weight):
    """embedding = (Q_vae > value); weight_emb = weight * embedding;
    recon_loss = (weight_emb * torch.square(recon - action)).mean();
    KL_loss = -0.5 * (1 + torch.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean();
    vae_loss = recon_loss + 0.5 * KL_loss."""
    embedding = q_vae > value
    weight_emb = vae_weight * embedding
    recon_loss = (weight_emb * np.square(recon - action)).mean()
    kl_loss = -0.5 * (1 + np.log(std**2) - mean**2 - std**2).mean()
    return recon_loss + 0.5 * kl_loss, recon_loss, kl_loss


def np_actor_loss(pi, action, recon_pi, q, q_new, q_pi, value, alpha, mask):
    """lmbda = self.alpha / Q.abs().mean(); actor_loss = -lmbda * Q.mean();
    advantage_action = Q_new - value; advantage_pi = Q_pi - value;
    embedding_pi = recon_pi * (advantage_pi >= advantage_action);
    embedding_action = action * (advantage_action > advantage_pi); embedding = embedding_pi + embedding_action;
    adv_pi = (Q_pi >= value); adv_action = (Q_new > value); adv = self.mask * (adv_pi + adv_action);
    bc_loss = (torch.square(pi - embedding) * adv).mean(); combined_loss = actor_loss + bc_loss."""
    lmbda = alpha / np.abs(q).mean()
    actor_loss = -lmbda * q.mean()
    advantage_action = q_new - value
    advantage_pi = q_pi - value
    embedding_pi = recon_pi * (advantage_pi >= advantage_action)
    embedding_action = action * (advantage_action > advantage_pi)
    embedding = embedding_pi + embedding_action
    adv_pi = q_pi >= value
    adv_action = q_new > value
    adv = mask * (adv_pi.astype(np.float32) + adv_action.astype(np.float32))
    bc_loss = (np.square(pi - embedding) * adv).mean()
    return actor_loss + bc_loss, bc_loss, adv


def _actor_example(seed=0):
    """Q_1 values with the authors' edge cases: a tie A(s, a~_pi) = A(s, a) (row 0: the VAE's action wins),
    A(s, a~_pi) = 0 (row 1: counts), A(s, a) = 0 (row 2: does not count)."""
    r = _rng(seed)
    pi = np.tanh(r.normal(size=(B, A))).astype(np.float32)
    action = np.tanh(r.normal(size=(B, A))).astype(np.float32)
    recon = np.tanh(r.normal(size=(B, A))).astype(np.float32)
    q, q_new, q_pi, value = (r.normal(size=(B, 1)).astype(np.float32) for _ in range(4))
    q_pi[0] = q_new[0]
    q_pi[1] = value[1]
    q_new[2] = value[2]
    q_new[3], q_pi[3] = value[3] - 1.0, value[3] - 2.0  # both negative: no BC at all
    return pi, action, recon, q, q_new, q_pi, value


def _ours_actor(pi, action, recon, q, q_new, q_pi, value, alpha, mask):
    return losses.a2pr_actor_loss(jnp.asarray(q[:, 0]), jnp.asarray(pi), jnp.asarray(action), jnp.asarray(recon),
                                  jnp.asarray((q_new - value)[:, 0]), jnp.asarray((q_pi - value)[:, 0]),
                                  alpha=alpha, mask=mask)


# --- the losses. ------------------------------------------------------------------------------


def test_value_target_matches_the_authors_code():
    r = _rng(1)
    tq, nq = r.normal(size=(2, B)).astype(np.float32), r.normal(size=(2, B)).astype(np.float32)
    reward = r.normal(size=B).astype(np.float32)
    done = np.array([0, 1, 0, 0, 1], np.float32)
    expected = np_value_target(tq[0][:, None], tq[1][:, None], nq[0][:, None], nq[1][:, None], reward[:, None],
                               1 - done[:, None], 0.995)[:, 0]
    ours = losses.a2pr_value_target(jnp.asarray(tq), jnp.asarray(nq), jnp.asarray(reward), jnp.asarray(done), 0.995)
    np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-6)
    # Both sources bind somewhere on this example (so swapping or dropping one would show).
    alone = losses.clipped_double_q_target(jnp.asarray(tq), jnp.asarray(reward), jnp.asarray(done), 0.995)
    assert not np.allclose(np.asarray(alone), expected)
    assert np.any(np.isclose(np.asarray(alone), expected))
    assert float(jnp.sum(jax.grad(lambda x: jnp.sum(losses.a2pr_value_target(
        x, jnp.asarray(nq), jnp.asarray(reward), jnp.asarray(done), 0.99)))(jnp.asarray(tq)))) == 0.0


def test_vae_loss_matches_the_authors_code():
    r = _rng(2)
    recon, action = (np.tanh(r.normal(size=(B, A))).astype(np.float32) for _ in range(2))
    mean = r.normal(size=(B, L)).astype(np.float32)
    log_std = r.uniform(-2, 1, size=(B, L)).astype(np.float32)
    q, v = r.normal(size=(B, 1)).astype(np.float32), r.normal(size=(B, 1)).astype(np.float32)
    q[0] = v[0]  # a tie: Q_vae > value is strict, so row 0 is filtered out
    expected = np_vae_loss(recon, action, mean, np.exp(log_std), q, v, 1.5)
    ours, parts = losses.a2pr_vae_loss(jnp.asarray(recon), jnp.asarray(action), jnp.asarray(mean),
                                       jnp.asarray(log_std), jnp.asarray(q[:, 0]), jnp.asarray(v[:, 0]),
                                       vae_weight=1.5)
    np.testing.assert_allclose(float(ours), expected[0], rtol=1e-5)
    np.testing.assert_allclose(float(parts["recon_loss"]), expected[1], rtol=1e-5)
    np.testing.assert_allclose(float(parts["kl_loss"]), expected[2], rtol=1e-5)
    assert 0 < int(np.sum(q > v)) < B  # the filter keeps some rows and drops others


def test_vae_loss_identities():
    """The KL is 0 at the prior N(0, I) and positive elsewhere; vae_weight = 0 leaves kl_weight * KL."""
    zeros = jnp.zeros((B, L))
    assert float(losses.gaussian_kl_loss(zeros, zeros)) == 0.0
    assert float(losses.gaussian_kl_loss(zeros + 0.3, zeros - 0.2)) > 0.0
    r = _rng(3)
    recon, action = (jnp.asarray(r.uniform(-1, 1, size=(B, A)), jnp.float32) for _ in range(2))
    mean, log_std = jnp.asarray(r.normal(size=(B, L)), jnp.float32), jnp.asarray(r.normal(size=(B, L)) * 0.3)
    q, v = jnp.ones(B), jnp.zeros(B)
    loss, _ = losses.a2pr_vae_loss(recon, action, mean, log_std, q, v, vae_weight=0.0, kl_weight=0.7)
    assert float(loss) == pytest.approx(0.7 * float(losses.gaussian_kl_loss(mean, log_std)), rel=1e-6)
    # All rows with positive advantage, weight 1: the reconstruction term is the plain MSE.
    _, parts = losses.a2pr_vae_loss(recon, action, mean, log_std, q, v, vae_weight=1.0)
    assert float(parts["recon_loss"]) == pytest.approx(float(losses.bc_loss(recon, action)), rel=1e-6)


def test_actor_loss_matches_the_authors_code():
    example = _actor_example()
    for alpha, mask in ((2.5, 0.4), (40.0, 1.5)):
        expected, expected_bc, adv = np_actor_loss(*example, alpha, mask)
        ours, parts = _ours_actor(*example, alpha, mask)
        np.testing.assert_allclose(float(ours), expected, rtol=1e-5)
        np.testing.assert_allclose(float(parts["bc_loss"]), expected_bc, rtol=1e-5)
        np.testing.assert_allclose(float(parts["bc_weight_mean"]), adv.mean(), rtol=1e-6)
    # The example covers the weights 0, mask and 2 mask, and both targets.
    assert set(np.unique(adv / mask)) == {0.0, 1.0, 2.0}
    assert 0.0 < float(parts["vae_target_frac"]) < 1.0


def test_actor_loss_gradient_reaches_pi_and_the_chosen_vae_action():
    """d/d pi = 2 m_b (pi - a^) / (B A) and d/d a~_pi = -2 m_b (pi - a~_pi) / (B A) where the VAE's
    action is the target (0 elsewhere): no stop-gradient on the VAE's output, as the authors'."""
    pi, action, recon, q, q_new, q_pi, value = _actor_example()
    _, _, adv = np_actor_loss(pi, action, recon, q, q_new, q_pi, value, 2.5, 0.4)
    chose_vae = (q_pi - value) >= (q_new - value)
    target = np.where(chose_vae, recon, action)

    def loss(pi_, recon_):
        return _ours_actor(pi_, action, recon_, q, q_new, q_pi, value, 2.5, 0.4)[0]

    g_pi, g_recon = jax.grad(loss, argnums=(0, 1))(jnp.asarray(pi), jnp.asarray(recon))
    np.testing.assert_allclose(np.asarray(g_pi), 2 * adv * (pi - target) / (B * A), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(g_recon), -2 * adv * chose_vae * (pi - recon) / (B * A), rtol=1e-5,
                               atol=1e-7)
    assert np.any(np.abs(np.asarray(g_recon)) > 1e-3)


def test_actor_loss_is_td3_bc_where_the_dataset_action_wins_everywhere():
    """adv_data > adv_vae >= 0 in every state and mask 0.5: weight 1 on (pi - a)^2, TD3+BC's loss and
    gradient; mask 0 leaves -lambda mean Q (TD3's actor)."""
    r = _rng(4)
    q, pi, action, recon = (jnp.asarray(x, jnp.float32) for x in (
        r.normal(size=B), np.tanh(r.normal(size=(B, A))), np.tanh(r.normal(size=(B, A))),
        np.tanh(r.normal(size=(B, A)))))
    adv_vae = jnp.asarray(r.uniform(0.0, 1.0, size=B), jnp.float32).at[0].set(0.0)
    adv_data = adv_vae + jnp.asarray(r.uniform(0.1, 1.0, size=B), jnp.float32)

    def ours(q_, pi_, mask):
        return losses.a2pr_actor_loss(q_, pi_, action, recon, adv_data, adv_vae, alpha=2.5, mask=mask)[0]

    def theirs(q_, pi_):
        return losses.td3_bc_actor_loss(q_, pi_, action, 2.5)

    assert float(ours(q, pi, 0.5)) == pytest.approx(float(theirs(q, pi)), rel=1e-6)
    for g_ours, g_theirs in zip(jax.grad(ours, argnums=(0, 1))(q, pi, 0.5), jax.grad(theirs, argnums=(0, 1))(q, pi),
                                strict=True):
        np.testing.assert_allclose(np.asarray(g_ours), np.asarray(g_theirs), rtol=1e-6, atol=1e-8)
    td3 = -losses.q_normalizer(q, 2.5) * jnp.mean(q)
    assert float(ours(q, pi, 0.0)) == pytest.approx(float(td3), rel=1e-6)
    assert abs(float(ours(q, pi, 0.5)) - float(td3)) > 1e-3


def test_value_loss_is_the_authors_mse_at_expectile_one_half():
    _, _, value, _ = a2pr.make_networks(SPEC, CONFIG)
    obs = make_batch(jax.random.key(1)).observations
    params = value.init(jax.random.key(0), obs[0])
    target = jax.random.normal(jax.random.key(2), (obs.shape[0],))
    v = value.apply(params, obs)
    mse, _ = a2pr.value_loss(params, target, obs, value=value, hparams=a2pr.HParams())
    assert float(mse) == pytest.approx(float(jnp.mean((v - target) ** 2)), rel=1e-6)
    upper, _ = a2pr.value_loss(params, target, obs, value=value, hparams=a2pr.HParams(value_expectile=0.8))
    diff = target - v
    expected = jnp.mean(jnp.where(diff > 0, 1.6, 0.4) * diff**2)
    assert float(upper) == pytest.approx(float(expected), rel=1e-6)


def test_conditional_vae_reparameterises_and_clips():
    vae = ConditionalVAE(action_dim=A, latent_dim=L, hidden_sizes=(8, 8))
    obs, action = jax.random.normal(jax.random.key(0), (B, 3)), jnp.tanh(jax.random.normal(jax.random.key(1), (B, A)))
    params = vae.init(jax.random.key(2), obs, action, jax.random.key(3))
    key = jax.random.key(4)
    recon, mean, log_std = vae.apply(params, obs, action, key)
    assert recon.shape == (B, A) and mean.shape == log_std.shape == (B, L)
    z = mean + jnp.exp(log_std) * jax.random.normal(key, (B, L))
    np.testing.assert_allclose(np.asarray(recon), np.asarray(vae.apply(params, obs, z, method=vae.decode)),
                               rtol=1e-6, atol=1e-7)
    big = jax.tree.map(lambda p: 1e3 * p, params)
    _, _, log_std = vae.apply(big, obs, action, key)
    assert float(jnp.max(log_std)) == 15.0 and float(jnp.min(log_std)) == -4.0  # A2PR.py: clamp(-4, 15)
    assert float(jnp.max(jnp.abs(vae.apply(big, obs, z, method=vae.decode)))) <= 1.0


# --- the update. ------------------------------------------------------------------------------


def test_each_step_descends_its_loss_in_the_authors_order():
    """Update 1: critics (TD3+BC's loss), then V towards t built with the NEW critics and the target ones,
    then the VAE filtered by the new Q_1 and the OLD V; the actor and the targets wait. Update 2: the
    actor against the new critics, the new VAE and that update's old V, then Polyak targets."""
    key = jax.random.key(0)
    batch = make_batch(jax.random.key(1))
    hp = SMALL_LR
    agent0 = jit_init(a2pr)(key, SPEC, CONFIG, hp)
    agent0 = agent0.replace(target_actor_params=jax.tree.map(lambda p: 1.5 * p + 0.05, agent0.target_actor_params),
                            target_critic_params=jax.tree.map(lambda p: 0.7 * p - 0.02, agent0.target_critic_params))
    agent1, m1 = jit_update(a2pr)(agent0, batch, key, SPEC, CONFIG, hp)
    key2 = jax.random.key(5)
    agent2, m2 = jit_update(a2pr)(agent1, batch, key2, SPEC, CONFIG, hp)
    actor, critic, value, vae = a2pr.make_networks(SPEC, CONFIG)
    k_noise, k_vae, _ = jax.random.split(key, 3)
    _, _, k_actor = jax.random.split(key2, 3)
    nets = dict(actor=actor, critic=critic, hparams=hp)

    @jax.jit
    def update1_objectives(agent, critic_for_targets, value_for_filter):
        l_q = td3_bc.critic_loss(agent.critic_params, agent0, batch, k_noise, **nets)[0]
        t = a2pr.value_target(agent0, critic_for_targets, batch, k_noise, **nets)
        l_v = a2pr.value_loss(agent.value_params, t, batch.observations, value=value, hparams=hp)[0]
        q_data = critic.apply(critic_for_targets, batch.observations, batch.actions)[0]
        v_old = value.apply(value_for_filter, batch.observations)
        l_vae = a2pr.vae_loss(agent.vae_params, batch, q_data, v_old, k_vae, vae=vae, hparams=hp)[0]
        return l_q, l_v, l_vae

    before = update1_objectives(agent0, agent1.critic_params, agent0.value_params)
    after = update1_objectives(agent1, agent1.critic_params, agent0.value_params)
    for name, b, a in zip(("critic", "value", "vae"), before, after, strict=True):
        assert float(a) < float(b), name
    for name, b in zip(("critic_loss", "value_loss", "vae_loss"), before, strict=True):
        assert float(m1[f"train/{name}"]) == pytest.approx(float(b), rel=1e-5), name
    # V's target from the old critics would differ here; the VAE's filter uses the new Q_1 and the old V.
    wrong = update1_objectives(agent0, agent0.critic_params, agent0.value_params)
    assert abs(float(wrong[1]) - float(before[1])) > 1e-4
    assert float(m1["train/adv_positive_frac"]) == pytest.approx(float(jnp.mean(
        critic.apply(agent1.critic_params, batch.observations, batch.actions)[0]
        > value.apply(agent0.value_params, batch.observations))))
    # policy_freq 2: update 1 leaves the actor and the targets.
    assert float(m1["train/actor_updated"]) == 0.0 and float(m1["train/actor_loss"]) == 0.0
    assert tree_max_abs_diff(agent1.actor_params, agent0.actor_params) == 0.0
    assert tree_max_abs_diff(agent1.target_critic_params, agent0.target_critic_params) == 0.0

    # Update 2's actor step, with lambda held at its value (a constant of the objective).
    q_data = critic.apply(agent2.critic_params, batch.observations, batch.actions)[0]
    v_old = value.apply(agent1.value_params, batch.observations)

    @jax.jit
    def actor_objective(actor_params, lam):
        pi = actor.apply(actor_params, batch.observations)
        q_pi = critic.apply(agent2.critic_params, batch.observations, pi)[0]
        recon, _, _ = vae.apply(agent2.vae_params, batch.observations, pi, k_actor)
        q_vae = critic.apply(agent2.critic_params, batch.observations, recon)[0]
        target, count = losses.a2pr_bc_target(batch.actions, recon, q_data - v_old, q_vae - v_old)
        bc = jnp.mean(hp.mask * count[:, None] * (pi - target) ** 2)
        return -lam * jnp.mean(q_pi) + bc, hp.alpha / jnp.mean(jnp.abs(q_pi))

    assert float(m2["train/actor_updated"]) == 1.0
    lam = float(m2["train/lambda"])
    before_pi, lam_before = actor_objective(agent1.actor_params, lam)
    after_pi, _ = actor_objective(agent2.actor_params, lam)
    assert float(lam_before) == pytest.approx(lam, rel=1e-5)
    assert float(m2["train/actor_loss"]) == pytest.approx(float(before_pi), rel=1e-5)
    assert float(after_pi) < float(before_pi)
    tau = hp.tau
    for new, old, target in ((agent2.critic_params, agent1.target_critic_params, agent2.target_critic_params),
                             (agent2.actor_params, agent1.target_actor_params, agent2.target_actor_params)):
        expected = jax.tree.map(lambda p, t: (1 - tau) * t + tau * p, new, old)
        assert tree_max_abs_diff(target, expected) < 1e-6  # a few float32 ulps: the targets reach |x| ~ 2 here
        assert tree_max_abs_diff(target, old) > 0.0


def test_the_vae_and_the_actor_see_v_before_its_step():
    """The authors reuse the `value` tensor computed before `value_optimizer.step()`: the VAE's filter
    and the actor's advantages use V_old. A large value_lr moves V far enough in one step that V_new
    would give other losses here."""
    hp = SMALL_LR.replace(value_lr=0.05)
    batch = make_batch(jax.random.key(1))
    keys = (jax.random.key(0), jax.random.key(5))
    agents = [jit_init(a2pr)(keys[0], SPEC, CONFIG, hp)]
    metrics = []
    for key in keys:
        agent, m = jit_update(a2pr)(agents[-1], batch, key, SPEC, CONFIG, hp)
        agents.append(agent)
        metrics.append(m)
    actor, critic, value, vae = a2pr.make_networks(SPEC, CONFIG)

    @jax.jit
    def vae_and_actor_losses(agent_before, agent_after, value_params, key):
        """L_VAE of agent_before's VAE, L_pi of agent_before's actor against agent_after's critics and VAE."""
        _, k_vae, k_actor = jax.random.split(key, 3)
        q_data = critic.apply(agent_after.critic_params, batch.observations, batch.actions)[0]
        v = value.apply(value_params, batch.observations)
        l_vae = a2pr.vae_loss(agent_before.vae_params, batch, q_data, v, k_vae, vae=vae, hparams=hp)[0]
        l_pi = a2pr.actor_loss(agent_before.actor_params, agent_after.critic_params, batch,
                               vae_params=agent_after.vae_params, q_data=q_data, v=v, key=k_actor, actor=actor,
                               critic=critic, vae=vae, hparams=hp)[0]
        return l_vae, l_pi

    for step, name, index in ((0, "vae_loss", 0), (1, "actor_loss", 1)):
        before, after = agents[step], agents[step + 1]
        with_old = vae_and_actor_losses(before, after, before.value_params, keys[step])[index]
        with_new = vae_and_actor_losses(before, after, after.value_params, keys[step])[index]
        assert float(metrics[step][f"train/{name}"]) == pytest.approx(float(with_old), rel=1e-5), name
        assert abs(float(with_new) - float(with_old)) > 1e-3, name  # the check can tell them apart


def test_act_is_the_actor_in_bounds():
    agent = jit_init(a2pr)(jax.random.key(0), SPEC, CONFIG, SMALL_LR)
    obs = make_batch(jax.random.key(1)).observations
    actor, _, _, _ = a2pr.make_networks(SPEC, CONFIG)
    np.testing.assert_array_equal(np.asarray(a2pr.act(agent, obs, SPEC, CONFIG)),
                                  np.asarray(actor.apply(agent.actor_params, obs)))
    assert float(jnp.max(jnp.abs(a2pr.act(agent, obs, SPEC, CONFIG)))) <= 1.0


def test_vmapped_seeds_and_hparams_equal_a_loop():
    assert_vmap_equals_loop(a2pr, SMALL_LR, SMALL_LR.replace(mask=1.5, vae_weight=0.5, value_expectile=0.8,
                                                             alpha=40.0), num_updates=2)


def test_hparams_validate():
    a2pr.HParams().validate()
    a2pr.HParams(mask=jnp.array([0.4, 1.0, 10.0])).validate()  # a sweep batch
    for bad in (dict(mask=-0.1), dict(vae_weight=-1.0), dict(vae_lr=0.0), dict(value_expectile=1.0),
                dict(kl_weight=float("nan")), dict(gamma=1.5), dict(tau=0.0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            a2pr.HParams(**bad).validate()
    jax.jit(lambda hp: hp.validate() or hp.mask)(a2pr.HParams())  # skipped for tracers
    with pytest.raises(ValueError, match="continuous"):
        a2pr.init(jax.random.key(0), Spec(3, 1, discrete=True, num_actions=2), CONFIG, a2pr.HParams())


def test_bandit_prefers_the_rewarded_action():
    """The bandit of test_offline_td3_bc (BC's mean action ~0): the VAE learns only the positive-advantage
    (good) action and the BC target follows the higher advantage, so A2PR's mean action must be clearly
    positive. 500 updates, batch 32, default HParams, seeds 0/1."""
    data = bandit_dataset(jax.random.key(0))
    agent, metrics = train_on_dataset(a2pr, jax.random.key(1), data, a2pr.HParams(), num_updates=500)
    mean_action = float(jnp.mean(a2pr.act(agent, data.observations, SPEC, CONFIG)))
    assert bool(jnp.isfinite(metrics["train/critic_loss"]))
    assert mean_action > 0.3, mean_action  # 0.52 measured
    # Without the Q term (alpha 0) the policy is pure BC, but towards the higher-advantage target, so it
    # still leans to the good action where plain BC (TD3+BC at alpha 0) averages to ~0 (0.38 measured).
    agent, _ = train_on_dataset(a2pr, jax.random.key(1), data, a2pr.HParams(alpha=0.0), num_updates=500)
    mean_action = float(jnp.mean(a2pr.act(agent, data.observations, SPEC, CONFIG)))
    assert mean_action > 0.25, mean_action
