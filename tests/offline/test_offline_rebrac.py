"""ReBRAC (lfx.offline.rebrac): the actor steps on CORL's schedule, the critic step descends its loss,
the critic penalty enters the target with the right sign and size, the actor step descends its
objective, the reference initialisation, vmapped seeds == a loop, validation, and the bandit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from offline_agent_checks import (
    SPEC,
    assert_vmap_equals_loop,
    bandit_dataset,
    jit_init,
    jit_update,
    make_batch,
    train_on_dataset,
    tree_max_abs_diff,
)

from lfx.offline import losses, rebrac
from lfx.offline.types import AgentConfig, Spec

CONFIG = AgentConfig(hidden_sizes=(16, 16), critic_layer_norm=True)
SMALL_LR = rebrac.HParams(actor_lr=1e-4, critic_lr=1e-4)


def _three_updates(hparams, batch, key=jax.random.key(0)):
    agents = [jit_init(rebrac)(key, SPEC, CONFIG, hparams)]
    metrics = []
    for _ in range(3):  # the same batch and key each time
        agent, m = jit_update(rebrac)(agents[-1], batch, key, SPEC, CONFIG, hparams)
        agents.append(agent)
        metrics.append(m)
    return agents, metrics


def test_actor_schedule_and_critic_descent():
    batch = make_batch(jax.random.key(1))
    agents, metrics = _three_updates(SMALL_LR, batch)
    # CORL's delayed_updates mask arange(n) % policy_freq == 0: steps 0 and 2 update the actor and targets.
    assert [float(m["train/actor_updated"]) for m in metrics] == [1.0, 0.0, 1.0]
    # A skipped step reports the latest actor step's metrics (so means over steps are means over actor steps).
    assert float(metrics[1]["train/actor_loss"]) == float(metrics[0]["train/actor_loss"]) != 0.0
    assert tree_max_abs_diff(agents[2].actor_params, agents[1].actor_params) == 0.0
    assert tree_max_abs_diff(agents[2].target_critic_params, agents[1].target_critic_params) == 0.0
    assert tree_max_abs_diff(agents[1].actor_params, agents[0].actor_params) > 0.0
    # Between updates 2 and 3 only the critics moved (same targets, key, batch): the loss went down.
    assert float(metrics[2]["train/critic_loss"]) < float(metrics[1]["train/critic_loss"])


def test_critic_penalty_lowers_the_target_by_gamma_beta_penalty():
    """With no terminal transitions, mean y(beta) - mean y(0) = -gamma beta mean ||a~' - a'||^2."""
    batch = make_batch(jax.random.key(1), done_every=10**6)
    key = jax.random.key(4)
    agent = jit_init(rebrac)(key, SPEC, CONFIG, SMALL_LR)
    _, m0 = jit_update(rebrac)(agent, batch, key, SPEC, CONFIG, SMALL_LR.replace(beta_critic=0.0))
    _, m1 = jit_update(rebrac)(agent, batch, key, SPEC, CONFIG, SMALL_LR.replace(beta_critic=0.5))
    penalty = float(m1["train/critic_bc_penalty"])
    assert penalty > 0.1
    assert float(m1["train/target_mean"]) - float(m0["train/target_mean"]) == pytest.approx(
        -0.99 * 0.5 * penalty, rel=1e-4)


def test_actor_step_descends_its_objective():
    batch = make_batch(jax.random.key(1))
    agents, metrics = _three_updates(SMALL_LR, batch)
    actor, critic = rebrac.make_networks(SPEC, CONFIG)
    lam = float(metrics[2]["train/lambda"])

    @jax.jit
    def objective(actor_params, critic_params):  # lambda held at its value (it is stop-gradient)
        pi = actor.apply(actor_params, batch.observations)
        q = jnp.min(critic.apply(critic_params, batch.observations, pi), axis=0)
        penalty = jnp.sum(jnp.square(pi - batch.actions), axis=-1)
        return jnp.mean(SMALL_LR.beta_actor * penalty - lam * q), losses.rebrac_actor_loss(
            q, pi, batch.actions, SMALL_LR.beta_actor)

    before, reported = objective(agents[2].actor_params, agents[3].critic_params)
    after, _ = objective(agents[3].actor_params, agents[3].critic_params)
    assert float(metrics[2]["train/actor_loss"]) == pytest.approx(float(reported), rel=1e-5)
    assert float(after) < float(before)


def test_reference_initialisation():
    """CORL rebrac.py: hidden biases 0.1, hidden kernels within 1/sqrt(fan_in), heads within 1e-3 / 3e-3."""
    agent = jit_init(rebrac)(jax.random.key(0), SPEC, CONFIG, SMALL_LR)
    actor = agent.actor_params["params"]["mlp"]
    np.testing.assert_allclose(np.asarray(actor["Dense_0"]["bias"]), 0.1, rtol=1e-6)
    assert float(jnp.max(jnp.abs(actor["Dense_0"]["kernel"]))) <= 1 / np.sqrt(3)
    assert float(jnp.max(jnp.abs(actor["Dense_2"]["kernel"]))) <= 1e-3
    critic = agent.critic_params["params"]
    np.testing.assert_allclose(np.asarray(critic["EnsembleDense_0"]["bias"]), 0.1, rtol=1e-6)
    assert float(jnp.max(jnp.abs(critic["EnsembleDense_2"]["kernel"]))) <= 3e-3
    assert "EnsembleLayerNorm_0" in critic
    k = np.asarray(critic["EnsembleDense_1"]["kernel"])
    assert not np.allclose(k[0], k[1])  # two independent critics


def test_vmapped_seeds_and_hparams_equal_a_loop():
    assert_vmap_equals_loop(rebrac, SMALL_LR, SMALL_LR.replace(beta_actor=0.1, beta_critic=0.5), num_updates=2,
                            config=CONFIG)


def test_hparams_validate_and_paper_settings():
    rebrac.HParams().validate()
    for beta_actor, beta_critic in rebrac.PAPER_PENALTIES.values():
        rebrac.HParams(beta_actor=beta_actor, beta_critic=beta_critic).validate()
    for bad in (dict(beta_actor=-0.1), dict(beta_critic=float("nan")), dict(tau=1.5), dict(critic_lr=0.0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            rebrac.HParams(**bad).validate()
    rebrac.PAPER_AGENT_CONFIG.validate()
    assert rebrac.PAPER_AGENT_CONFIG.critic_layer_norm and rebrac.PAPER_AGENT_CONFIG.hidden_sizes == (256,) * 3
    with pytest.raises(ValueError, match="continuous"):
        rebrac.init(jax.random.key(0), Spec(3, 1, discrete=True, num_actions=2), CONFIG, rebrac.HParams())


def test_bandit_prefers_the_rewarded_action():
    """The bandit of test_offline_td3_bc (BC's mean action ~0): ReBRAC's must be clearly positive.
    500 updates, batch 32, default HParams (beta_actor 0.001), seeds 0/1."""
    data = bandit_dataset(jax.random.key(0))
    agent, metrics = train_on_dataset(rebrac, jax.random.key(1), data, rebrac.HParams(), num_updates=500,
                                      config=CONFIG)
    mean_action = float(jnp.mean(rebrac.act(agent, data.observations, SPEC, CONFIG)))
    assert bool(jnp.isfinite(metrics["train/critic_loss"]))
    assert mean_action > 0.3, mean_action
