"""lfx.es adapter: equals raw evosax on the same keys, sign convention, scan/vmap identities, BBOB."""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from evosax import algorithms as ea
from evosax.problems import BBOBProblem

from lfx.es import STRATEGIES, bbob, make_search, make_strategy, neuro

D, N = 4, 8


def _sphere(key, x, task=None):
    return -jnp.sum((x - 1.0) ** 2, axis=-1)


@pytest.mark.parametrize("name", ["snes", "cma_es"])
def test_adapter_equals_raw_evosax(name):
    strategy = make_strategy(name, population_size=N, num_dims=D)
    raw = {"snes": ea.SNES, "cma_es": ea.CMA_ES}[name](N, jnp.zeros(D))
    params = strategy.default_params
    key = jax.random.key(0)
    mean = jnp.full(D, 2.0)
    s_lfx = strategy.init(key, mean, params)
    s_raw = raw.init(key, mean, params)
    for g in range(3):
        k_ask, k_tell = jax.random.split(jax.random.fold_in(key, g))
        pop_lfx, s_lfx = strategy.ask(k_ask, s_lfx, params)
        pop_raw, s_raw = raw.ask(k_ask, s_raw, params)
        np.testing.assert_allclose(pop_lfx, pop_raw, rtol=1e-6)
        fit = _sphere(None, pop_lfx)
        s_lfx, m = strategy.tell(k_tell, pop_lfx, fit, s_lfx, params)
        s_raw, _ = raw.tell(k_tell, pop_raw, -fit, s_raw, params)  # evosax minimises
    np.testing.assert_allclose(s_lfx.mean, s_raw.mean, rtol=1e-5)
    np.testing.assert_allclose(strategy.best(s_lfx)[1], -s_raw.best_fitness, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_one_dim_quadratic_rises_for_every_strategy(name):
    """-(x - 1)^2 from x = -2 (fitness -9): every strategy gets within 0.5 of the optimum. A
    strategy told +fitness (a second sign flip, or none) minimises and walks away from it."""
    strategy = make_strategy(name, population_size=16, num_dims=1)
    search = jax.jit(make_search(strategy, _sphere, 30))
    state, metrics = search(jax.random.key(3), jnp.full(1, -2.0), strategy.default_params, None)
    assert float(metrics["best_fitness"][-1]) > -0.25
    assert float(metrics["gen_mean_fitness"][-5:].mean()) > float(metrics["gen_mean_fitness"][0])
    # best_fitness is the largest fitness seen, in lfx's sign, and belongs to the best solution.
    best_x, best_f = strategy.best(state)
    assert float(best_f) == pytest.approx(float(metrics["best_fitness"][-1]), rel=1e-6)
    assert float(best_f) == pytest.approx(float(_sphere(None, best_x)), rel=1e-5)
    assert np.all(np.diff(np.asarray(metrics["best_fitness"])) >= 0)


def test_open_es_traced_params_equal_evosax_with_optax_schedules():
    """lfx's OpenAI-ES with lr/σ in Params == evosax's Open_ES built with the optax schedules."""
    lr, lr_decay, lr_min, std, std_decay, std_min = 0.1, 0.9, 0.06, 0.5, 0.8, 0.3
    raw = ea.Open_ES(
        N, jnp.zeros(D),
        optimizer=optax.adam(optax.exponential_decay(lr, 1, lr_decay, end_value=lr_min)),
        std_schedule=optax.exponential_decay(std, 1, std_decay, end_value=std_min),
    )
    strategy = make_strategy("open_es", population_size=N, num_dims=D, lr=lr, lr_decay=lr_decay,
                             lr_min=lr_min, sigma=std, sigma_decay=std_decay, sigma_min=std_min)
    params = strategy.default_params
    key = jax.random.key(0)
    s_lfx = strategy.init(key, jnp.full(D, 2.0), params)
    s_raw = raw.init(key, jnp.full(D, 2.0), raw.default_params)
    for g in range(6):
        k_ask, k_tell = jax.random.split(jax.random.fold_in(key, g))
        pop, s_lfx = strategy.ask(k_ask, s_lfx, params)
        pop_raw, s_raw = raw.ask(k_ask, s_raw, raw.default_params)
        np.testing.assert_array_equal(pop, pop_raw)
        s_lfx, _ = strategy.tell(k_tell, pop, _sphere(None, pop), s_lfx, params)
        s_raw, _ = raw.tell(k_tell, pop_raw, -_sphere(None, pop_raw), s_raw, raw.default_params)
    np.testing.assert_array_equal(s_lfx.mean, s_raw.mean)
    np.testing.assert_array_equal(s_lfx.std, s_raw.std)


def test_open_es_lr_and_sigma_are_traced_no_recompile():
    traces = []

    def fitness(key, x, task):
        traces.append(1)
        return _sphere(key, x)

    strategy = make_strategy("open_es", population_size=N, num_dims=D)
    search = jax.jit(make_search(strategy, fitness, 5))
    p = strategy.default_params
    _, m1 = search(jax.random.key(0), jnp.zeros(D), p, None)
    n = len(traces)
    _, m2 = search(jax.random.key(0), jnp.zeros(D), p.replace(lr=0.2, sigma=0.1, sigma_decay=0.9), None)
    assert len(traces) == n
    assert not np.allclose(m1["gen_mean_fitness"], m2["gen_mean_fitness"])
    # A batch of Params is a vmapped sweep: row i equals the run with Params i.
    batch = jax.tree.map(lambda a, b: jnp.stack([a, b]), p, p.replace(lr=0.2, sigma=0.1, sigma_decay=0.9))
    _, mb = jax.jit(jax.vmap(make_search(strategy, fitness, 5), in_axes=(None, None, 0, None)))(
        jax.random.key(0), jnp.zeros(D), batch, None)
    np.testing.assert_allclose(mb["gen_mean_fitness"][1], m2["gen_mean_fitness"], rtol=1e-5)


def test_pytree_solution_equals_flat_solution():
    """solution= a pytree: population and mean keep its structure; the search is the flat one."""
    like = {"w": jnp.zeros((2, 2)), "b": jnp.zeros(1)}
    tree = make_strategy("open_es", population_size=N, solution=like)
    flat = make_strategy("open_es", population_size=N, num_dims=5)
    assert tree.num_dims == 5
    mean0 = {"w": jnp.ones((2, 2)), "b": jnp.full(1, -1.0)}
    flat0, unravel = jax.flatten_util.ravel_pytree(mean0)
    key = jax.random.key(4)
    st_t = tree.init(key, mean0, tree.default_params)
    st_f = flat.init(key, flat0, flat.default_params)
    for g in range(3):
        k_ask, k_tell = jax.random.split(jax.random.fold_in(key, g))
        pop_t, st_t = tree.ask(k_ask, st_t, tree.default_params)
        pop_f, st_f = flat.ask(k_ask, st_f, flat.default_params)
        assert pop_t["w"].shape == (N, 2, 2) and pop_t["b"].shape == (N, 1)
        fit = _sphere(None, pop_f)
        st_t, _ = tree.tell(k_tell, pop_t, fit, st_t, tree.default_params)
        st_f, _ = flat.tell(k_tell, pop_f, fit, st_f, flat.default_params)
    np.testing.assert_array_equal(jax.flatten_util.ravel_pytree(tree.mean(st_t))[0], flat.mean(st_f))
    assert jax.tree.structure(tree.mean(st_t)) == jax.tree.structure(mean0)


def test_vmapped_run_equals_loop_over_seeds_and_tasks():
    strategy = make_strategy("snes", population_size=N, num_dims=D)
    fitness = bbob.make_fitness(("rastrigin",), D)
    search = jax.jit(make_search(strategy, fitness, 10))
    keys = jax.random.split(jax.random.key(2), 3)
    tasks = jax.vmap(lambda k: bbob.sample_task(k, ("rastrigin",), D))(keys)
    params = strategy.default_params
    mean = jnp.zeros(D)
    batched = jax.jit(jax.vmap(search, in_axes=(0, None, None, 0)))
    _, m_vmap = batched(keys, mean, params, tasks)
    for i in range(3):
        task_i = jax.tree.map(lambda t, i=i: t[i], tasks)
        _, m_i = search(keys[i], mean, params, task_i)
        np.testing.assert_allclose(m_vmap["best_aux"][i], m_i["best_aux"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fn", ["sphere", "rastrigin", "schaffers_f7"])
def test_bbob_fitness_equals_evosax_problem(fn):
    """Same task as evosax's BBOBProblem(seed); also through the multi-function switch (fn_id)."""
    problem = BBOBProblem(fn, 5, seed=3)
    x = 2.0 * jax.random.normal(jax.random.key(4), (6, 5))
    value, _, _ = problem.eval(jax.random.key(5), x, problem._state)
    fns = ("discus", fn)
    task = bbob.make_task(fn, 5, 3).replace(fn_id=jnp.int32(1))
    fit, regret = bbob.make_fitness(fns, 5)(jax.random.key(5), x, task)
    np.testing.assert_allclose(-fit, value, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(regret, value - problem.f_opt, rtol=1e-4, atol=1e-3)
    assert np.all(np.asarray(regret) >= -1e-3)


def test_cartpole_fitness_equals_python_loop():
    fitness, x0, unravel = neuro.make_policy_fitness("CartPole-v1", hidden=(8,), max_steps=30)
    from lfx import envs

    env, env_params = envs.make("CartPole-v1")
    pop = 0.5 * jax.random.normal(jax.random.key(6), (3, x0.size))
    key = jax.random.key(7)
    got = np.asarray(jax.jit(fitness)(key, pop))
    step = jax.jit(env.step)
    for i, k_member in enumerate(jax.random.split(key, 3)):
        layers = unravel(pop[i])
        (k_ep,) = jax.random.split(k_member, 1)
        k_reset, k_steps = jax.random.split(k_ep)
        obs, state = env.reset(k_reset, env_params)
        total = 0.0
        for k in jax.random.split(k_steps, 30):
            h = np.tanh(np.asarray(obs) @ np.asarray(layers[0]["w"]) + np.asarray(layers[0]["b"]))
            action = int(np.argmax(h @ np.asarray(layers[1]["w"]) + np.asarray(layers[1]["b"])))
            obs, state, r, term, trunc, _ = step(k, state, action, env_params)
            total += float(r)
            if bool(term) or bool(trunc):
                break
        assert got[i] == pytest.approx(total)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="Unknown strategy"):
        make_strategy("nope", population_size=4, num_dims=2)
    with pytest.raises(ValueError, match="even"):
        make_strategy("open_es", population_size=5, num_dims=2)
    with pytest.raises(ValueError, match="exactly one of num_dims"):
        make_strategy("snes", population_size=4)
    with pytest.raises(ValueError, match="lr must be a positive"):
        make_strategy("open_es", population_size=4, num_dims=2, lr=-1.0)
    with pytest.raises(ValueError, match="Unknown BBOB"):
        bbob.make_fitness(("spheer",), 2)
