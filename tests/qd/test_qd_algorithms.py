"""NS / TAXONS / SERENE / STAX: budget accounting, autoencoder learning, coverage on point mass."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.envs.sparse.base import blob_image
from lfx.qd.autoencoder import AEConfig, make_autoencoder, make_trainer
from lfx.qd.baselines import BaselineConfig, make_random_search
from lfx.qd.explore import ExplorerConfig, run_explorer
from lfx.qd.ns import NSConfig
from lfx.qd.recipe import HParams
from lfx.qd.serene import SereneConfig, pareto_front, run_serene
from lfx.qd.task import make_task

NS_SMALL = NSConfig(population_size=20, archive_capacity=300, archive_add=3)


@pytest.fixture(scope="module")
def point_mass():
    # Large goal areas make rewards common, so SERENE's emitters start.
    return make_task("PointMass-sparse", hidden=(8,), image_size=16, max_steps_in_episode=30, max_speed=0.05,
                     goal_radii=jnp.array([0.2, 0.2]))


@pytest.mark.parametrize("reachable", [True, False])
def test_serene_scheduler_budget_split(reachable, point_mass):
    # Goals off the square make rewards impossible: every evaluation must then go to NS.
    task = point_mass if reachable else make_task(
        "PointMass-sparse", hidden=(4,), max_steps_in_episode=10, goal_centres=jnp.array([[5.0, 5.0], [6.0, 6.0]]))
    # lfx's scheduler before issue 19 (the authors' one: tests/qd/test_qd_serene.py)
    budget, chunk = 713, 100
    cfg = SereneConfig(explorer=ExplorerConfig(ns=NS_SMALL), chunk_size=chunk, stagnation_generations=3,
                       variant="lfx_v1")
    tracker, history, stats = run_serene(jax.random.key(3), task, cfg, budget)
    assert int(tracker.counter.used) == budget == stats["ns_evaluations"] + stats["emitter_evaluations"]
    assert sum(n for _, n in stats["phases"]) == budget
    assert [h["evaluations"] for h in history] == sorted(h["evaluations"] for h in history)
    kinds = [k for k, _ in stats["phases"]]
    assert kinds[0] == "ns" and stats["phases"][0][1] == 20  # the initial population
    used = 20
    for i, (kind, n) in enumerate(stats["phases"][1:], 1):
        if kind == "ns":  # exploration chunks are exactly one chunk, or what is left of the budget
            assert n == min(chunk, budget - used)
        else:  # exploitation never overshoots its chunk and never follows itself
            assert 0 < n <= min(chunk, budget - used) and kinds[i - 1] == "ns"
        used += n
    if reachable:
        assert stats["emitter_evaluations"] > 0 and stats["emitters_created"] >= 1
        assert history[-1]["best_reward"] > 0
    else:
        assert stats["emitter_evaluations"] == 0 and kinds == ["ns"] * len(kinds)
        assert history[-1]["best_reward"] == 0.0


def test_pareto_front():
    a = np.array([1.0, 2.0, 3.0, 1.0, 3.0])
    b = np.array([3.0, 2.0, 1.0, 1.0, 0.5])
    assert sorted(pareto_front(a, b).tolist()) == [0, 1, 2]


def test_autoencoder_reduces_reconstruction_loss():
    cfg = AEConfig(image_size=16, latent_dim=4, hidden=64)
    init, encode, surprise, loss = make_autoencoder(cfg)
    opt_init, train, _ = make_trainer(cfg)
    pos = jax.random.uniform(jax.random.key(0), (256, 2))
    images = jax.jit(jax.vmap(lambda p: blob_image(p[None], jnp.zeros(2), jnp.ones(2), 16)))(pos)
    loss, surprise = jax.jit(loss), jax.jit(surprise)
    params = jax.jit(init)(jax.random.key(1))
    before = float(loss(params, images))
    params, _, _ = train(jax.random.key(2), params, opt_init(params, 3e-3), images, jnp.ones(256), 300)
    after = float(loss(params, images))
    assert after < 0.2 * before
    # surprise ranks a never-seen kind of image (a full white square) above the training images
    s = surprise(params, jnp.concatenate([images[:8], jnp.ones((1, 16, 16))]))
    assert float(s[-1]) > float(s[:-1].max())
    assert jax.eval_shape(encode, params, images).shape == (256, 4)


def test_novelty_search_raises_coverage_on_point_mass(point_mass):
    budget = 1010
    tracker, _, hist = run_explorer(jax.random.key(0), point_mass, ExplorerConfig(ns=NS_SMALL), budget)
    rs = make_random_search(point_mass, BaselineConfig(population_size=40), budget)
    _, rs_metrics = jax.jit(rs.train)(jax.random.key(0), HParams())
    assert int(tracker.counter.used) == budget == hist[-1]["evaluations"]
    assert int(rs_metrics["qd/evaluations"][-1]) == budget
    assert hist[-1]["coverage"] > 3 * hist[0]["coverage"]
    assert hist[-1]["coverage"] > 1.5 * float(rs_metrics["qd/coverage"][-1])


def test_stax_explorer_learns_space_and_raises_coverage(point_mass):
    cfg = ExplorerConfig(mode="stax", ns=NS_SMALL, ae=AEConfig(image_size=16, latent_dim=4, hidden=64),
                         retrain_every=5, epoch_steps=40, max_epochs=3)
    tracker, explorer, hist = run_explorer(jax.random.key(1), point_mass, cfg, 620)
    assert explorer.ae_trainings >= 3  # initial + growing intervals (5, 7.5 -> 8, ...)
    assert hist[-1]["coverage"] > 3 * hist[0]["coverage"]
    assert int(tracker.counter.used) == 620


def test_explorer_rejects_bad_config():
    with pytest.raises(ValueError, match="mode"):
        ExplorerConfig(mode="nope")
    with pytest.raises(ValueError, match="archive_strategy"):
        NSConfig(archive_strategy="best")
