"""lfx.qd.map_elites: today's MAP-Elites draw for draw, vmap == loop, budgets, learning, bad configs."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.qd import metrics
from lfx.qd.baselines import BASELINES, BaselineConfig, make_random_search
from lfx.qd.map_elites import HParams, MapElitesConfig, make_map_elites
from lfx.qd.mutation import gaussian_mutation
from lfx.qd.planar_arm import make_planar_arm_task
from lfx.qd.recipe import HParams as QDHParams
from lfx.qd.recipe import generations_for_budget, make_scan_recipe
from lfx.qd.task import evaluate_granted, init_tracker

TASK = make_planar_arm_task(6)


@flax.struct.dataclass
class OldGrid:
    genomes: jax.Array
    fitness: jax.Array


def old_map_elites(task, config, budget):
    """lfx.qd.baselines.make_map_elites before issue 19, transcribed (the documented figures' code)."""
    n, g = config.population_size, config.grid_bins
    grid0 = metrics.init_grid(task.descriptor_low, task.descriptor_high, g)

    def insert(me, genomes, ev, granted):
        cell = metrics.cell_index(grid0, ev.descriptor)
        flat = cell[:, 0] * g + cell[:, 1]
        fit = jnp.where(granted, ev.fitness, -jnp.inf)
        best = jnp.full((g * g,), -jnp.inf).at[flat].max(fit)
        winner = (fit == best[flat]) & granted
        first = jnp.full((g * g,), n).at[jnp.where(winner, flat, g * g)].min(jnp.arange(n), mode="drop")
        is_first = winner & (first[flat] == jnp.arange(n))
        better = is_first & (fit > me.fitness[flat])
        tgt = jnp.where(better, flat, g * g)
        return OldGrid(genomes=me.genomes.at[tgt].set(genomes, mode="drop"),
                       fitness=me.fitness.at[tgt].set(fit, mode="drop"))

    def init_search(key, hparams):
        k0, key = jax.random.split(key)
        k_g, k_e = jax.random.split(k0)
        tracker = init_tracker(task, budget, g)
        genomes = task.init_genomes(k_g, n)
        tracker, ev, granted = evaluate_granted(k_e, task, tracker, genomes)
        me = OldGrid(jnp.zeros((g * g, task.genome_dim)), jnp.full((g * g,), -jnp.inf))
        return insert(me, genomes, ev, granted), tracker, key

    def step(k, me, tracker, hparams):
        k_s, k_m, k_e = jax.random.split(k, 3)
        filled = jnp.isfinite(me.fitness)
        idx = jax.random.choice(k_s, g * g, (n,), p=filled / filled.sum())
        kids = gaussian_mutation(k_m, me.genomes[idx], sigma=hparams.sigma, clip=config.clip)
        tracker, ev, granted = evaluate_granted(k_e, task, tracker, kids)
        return insert(me, kids, ev, granted), tracker

    num = generations_for_budget(budget, n, n, "MAP-Elites")
    return make_scan_recipe(config, budget, num, init_search, step)


def test_default_map_elites_is_the_pre_issue_19_one_draw_for_draw():
    config = BaselineConfig(population_size=16, grid_bins=10, clip=(0.0, 1.0))
    old, new = old_map_elites(TASK, config, 500), BASELINES["map_elites"](TASK, config, 500)
    assert old.num_updates == new.num_updates
    hp = QDHParams(sigma=0.1)
    s_old, m_old = jax.jit(old.train)(jax.random.key(4), hp)
    s_new, m_new = jax.jit(new.train)(jax.random.key(4), hp)
    for k, v in m_old.items():
        np.testing.assert_array_equal(np.asarray(v), np.asarray(m_new[k]), err_msg=k)
    np.testing.assert_array_equal(np.asarray(s_old.search.fitness), np.asarray(s_new.search.repertoire.fitnesses))
    np.testing.assert_array_equal(np.asarray(s_old.search.genomes), np.asarray(s_new.search.repertoire.genotypes))
    assert int(s_new.tracker.counter.used) == 500
    # the repertoire's own metrics agree with it
    f = np.asarray(s_new.search.repertoire.fitnesses)
    np.testing.assert_allclose(float(m_new["me/qd_score"][-1]), f[np.isfinite(f)].sum(), rtol=1e-5)
    assert float(m_new["me/coverage"][-1]) == pytest.approx(np.isfinite(f).mean())


# "map_elites" (grid + Gaussian) is also covered by tests/qd/test_qd_recipes.py; "map_elites_cvt" differs from
# it only in its (static) centroids. The two emitters with their own traced floats and state run here.
@pytest.mark.parametrize("name", ("map_elites_iso", "map_elites_es"))
def test_vmapped_seeds_and_settings_equal_a_loop_and_spend_the_budget(name):
    config = BaselineConfig(population_size=8, grid_bins=6, clip=(0.0, 1.0))
    recipe = BASELINES[name](TASK, config, 100)
    keys = jnp.stack([jax.random.key(0), jax.random.key(1)])
    hps = [HParams(sigma=0.05, line_sigma=0.1, es_sigma=0.02, es_lr=0.01),
           HParams(sigma=0.2, line_sigma=0.5, es_sigma=0.1, es_lr=0.05)]
    batch = jax.tree.map(lambda *x: jnp.stack(x), *hps)
    _, m_v = jax.jit(jax.vmap(recipe.train))(keys, batch)
    train = jax.jit(recipe.train)
    for i in range(2):
        _, m = train(keys[i], hps[i])
        for k, v in m.items():
            np.testing.assert_allclose(np.asarray(m_v[k][i]), np.asarray(v), rtol=1e-5, atol=1e-6, err_msg=k)
        assert int(m["qd/evaluations"][-1]) == 100
    # the settings matter (the traced floats reach the emitter)
    assert not np.array_equal(np.asarray(m_v["me/qd_score"][0]), np.asarray(m_v["me/qd_score"][1]))


def test_map_elites_fills_more_cells_than_random_search_at_the_same_budget():
    config = BaselineConfig(population_size=32, grid_bins=50, clip=(0.0, 1.0))
    budget = 1600
    me, rs = BASELINES["map_elites"](TASK, config, budget), make_random_search(TASK, config, budget)
    keys = jnp.stack([jax.random.key(s) for s in range(3)])
    _, m_me = jax.jit(jax.vmap(me.train, in_axes=(0, None)))(keys, QDHParams(sigma=0.05))
    _, m_rs = jax.jit(jax.vmap(rs.train, in_axes=(0, None)))(keys, QDHParams())
    cov_me, cov_rs = np.asarray(m_me["qd/coverage"][:, -1]), np.asarray(m_rs["qd/coverage"][:, -1])
    assert (cov_me > cov_rs).all(), (cov_me, cov_rs)  # same 50 x 50 visit grid, same evaluations


def test_cvt_repertoire_and_qd_offset_from_the_config():
    config = MapElitesConfig(population_size=8, repertoire="cvt", num_centroids=30, cvt_samples=600,
                             cvt_iterations=5, emitter="iso_line", clip=(0.0, 1.0), qd_offset=1.0)
    recipe = make_map_elites(TASK, config, 80)
    s, m = jax.jit(recipe.train)(jax.random.key(0), HParams())
    rep = s.search.repertoire
    assert rep.grid_shape is None and rep.centroids.shape == (30, 2)
    f = np.asarray(rep.fitnesses)
    np.testing.assert_allclose(float(m["me/qd_score"][-1]), (f[np.isfinite(f)] + 1.0).sum(), rtol=1e-5)
    assert float(m["me/max_fitness"][-1]) == f.max() <= 0  # the arm's fitness is -std(angles)


def test_bad_config_and_hparams_are_refused_with_what_to_change():
    for kwargs, match in (({"repertoire": "hex"}, "repertoire"), ({"emitter": "cma"}, "emitter"),
                          ({"es_population": 7}, "es_population"), ({"population_size": 0}, "population_size"),
                          ({"repertoire": "cvt", "num_centroids": 100, "cvt_samples": 50}, "cvt_samples"),
                          ({"clip": (1.0, 0.0)}, "clip")):
        with pytest.raises(ValueError, match=match):
            make_map_elites(TASK, MapElitesConfig(**kwargs), 1000)
    with pytest.raises(ValueError, match="budget"):
        make_map_elites(TASK, MapElitesConfig(population_size=100), 100)
    with pytest.raises(ValueError, match="line_sigma"):
        HParams(line_sigma=-0.1).validate()
    with pytest.raises(ValueError, match="es_lr"):
        HParams(es_lr=0.0).validate()
    hp = HParams.from_qd(QDHParams(sigma=0.3, es_sigma=0.2, es_lr=0.04))
    assert (hp.sigma, hp.line_sigma, hp.es_sigma, hp.es_lr) == (0.3, 0.2, 0.2, 0.04)
