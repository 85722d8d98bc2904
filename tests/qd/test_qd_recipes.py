"""lfx.qd's recipes: traced HParams (no retrace), vmapped settings x seeds equal a loop, budgets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.experiment import recipe_functions, stack_hparams
from lfx.qd.autoencoder import AEConfig
from lfx.qd.baselines import BaselineConfig, make_map_elites, make_openai_es, make_random_search
from lfx.qd.explore import ExplorerConfig, make_explorer, run_explorer
from lfx.qd.ns import NSConfig, make_ns
from lfx.qd.recipe import HParams, generations_for_budget
from lfx.qd.task import make_task

NS_TINY = NSConfig(population_size=6, archive_capacity=40, archive_add=2, k=3)
SETTINGS = [HParams(sigma=0.05, mutation_prob=1.0, es_sigma=0.3, es_lr=0.05),
            HParams(sigma=0.5, mutation_prob=0.5, es_sigma=0.05, es_lr=0.01)]
BUILDERS = {
    "ns": lambda task: make_ns(task, NS_TINY, 42),
    "openai_es": lambda task: make_openai_es(task, BaselineConfig(population_size=6), 42),
    "map_elites": lambda task: make_map_elites(task, BaselineConfig(population_size=6, grid_bins=8), 42),
}


@pytest.fixture(scope="module")
def task():
    return make_task("PointMass-sparse", hidden=(3,), max_steps_in_episode=6, max_speed=0.2)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_traced_hparams_do_not_recompile_and_vmapped_grid_equals_a_loop(name, task):
    recipe = BUILDERS[name](task)
    traces = []

    def counted(key, hp):
        traces.append(1)
        return recipe.train(key, hp)

    train = jax.jit(counted)
    keys = jax.random.split(jax.random.key(7), 2)
    loop = [[jax.device_get(train(k, hp)[1]) for k in keys] for hp in SETTINGS]
    assert len(traces) == 1  # four runs, two values of every traced float: one trace
    # the traced floats are used: another sigma gives another search
    assert not np.array_equal(loop[0][0]["qd/coverage"], loop[1][0]["qd/coverage"])
    assert int(loop[0][0]["qd/evaluations"][-1]) == 42

    # the harness's functions: settings x seeds in one call (chunking: tests/qd/test_qd_sparse_script)
    init, run = recipe_functions(recipe, keys, stack_hparams(SETTINGS))
    _, grid = run(init(), recipe.num_updates)
    for h in range(2):
        for s in range(2):
            for k, want in loop[h][s].items():
                np.testing.assert_allclose(np.asarray(grid[k][h, s]), want, rtol=1e-5,
                                           err_msg=f"{name} {k} [{h}, {s}]")


def test_ns_recipe_equals_the_host_driver(task):
    hp = HParams(sigma=0.2)
    recipe = make_ns(task, NS_TINY, 42)
    _, m = jax.jit(recipe.train)(jax.random.key(3), hp)
    tracker, _, hist = run_explorer(jax.random.key(3), task, ExplorerConfig(ns=NS_TINY), 42, hp)
    assert [h["evaluations"] for h in hist[1:]] == np.asarray(m["qd/evaluations"]).tolist()
    np.testing.assert_allclose([h["coverage"] for h in hist[1:]], m["qd/coverage"], rtol=1e-6)


def test_host_driver_reuses_its_compiled_functions_across_hparams(task):
    img_task = make_task("PointMass-sparse", hidden=(3,), max_steps_in_episode=6, image_size=8)
    cfg = ExplorerConfig(mode="taxons", ns=NS_TINY, ae=AEConfig(image_size=8, latent_dim=2, hidden=8),
                         retrain_every=1, surprise_after=0, train_steps=2)
    fns = make_explorer(img_task, cfg)
    hists = [run_explorer(jax.random.key(0), img_task, cfg, 30, hp, functions=fns)[2]
             for hp in (HParams(sigma=0.05, ae_lr=1e-3), HParams(sigma=0.3, ae_lr=1e-2))]
    assert fns.step._cache_size() == 1 and fns.train_steps._cache_size() == 1
    assert hists[0][-1]["evaluations"] == hists[1][-1]["evaluations"] == 30
    assert hists[0] != hists[1]


def test_every_baseline_spends_the_budget_exactly(task):
    cfg = BaselineConfig(population_size=5)  # OpenAI-ES rounds up to 6 (antithetic pairs)
    for make in (make_random_search, make_openai_es, make_map_elites):
        recipe = make(task, cfg, 23)
        _, m = jax.jit(recipe.train)(jax.random.key(0), HParams())
        ev = np.asarray(m["qd/evaluations"])
        assert ev[-1] == 23 and np.all(np.diff(ev) > 0), make.__name__


def test_bad_budgets_and_sizes_are_refused_with_what_to_change(task):
    with pytest.raises(ValueError, match="positive integer"):
        generations_for_budget(0, 0, 10, "x")
    with pytest.raises(ValueError, match="must exceed the 6 evaluations"):
        make_ns(task, NS_TINY, 6)
    with pytest.raises(ValueError, match="population_size"):
        BaselineConfig(population_size=0)
    with pytest.raises(ValueError, match="population_size"):
        NSConfig(population_size=0)
    with pytest.raises(ValueError, match="es_sigma"):
        HParams(es_sigma=0.0).validate()
    with pytest.raises(ValueError, match="sigma"):
        HParams(sigma=-1.0).validate()
    with pytest.raises(ValueError, match="mutation_prob"):
        HParams(mutation_prob=1.5).validate()
    assert jnp.isfinite(HParams().sigma)
