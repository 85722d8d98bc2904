"""ES meta-training on a tiny inner problem: improvement, chunking, the sign, traced lr/σ, fitness pieces."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.meta import bandit, es, fitness, lpo

CFG = lpo.DriftConfig(hidden_size=16)
BANDIT = bandit.BanditConfig(num_updates=10, learning_rate=0.5)
ES_CFG = es.ESConfig(population_size=16, num_generations=6)
ES_HP = es.HParams(lr=0.2, sigma=0.2, lr_decay=1.0, sigma_decay=1.0)


def _problem():
    train = bandit.make_train(BANDIT, lpo.make_lpo_objective(CFG))
    fit = fitness.make_fitness([fitness.Task("bandit", train)], num_seeds=8, window_fraction=0.3)
    evaluate = fitness.make_fitness([fitness.Task("bandit", train)], num_seeds=64, window_fraction=0.3)
    meta_objective = jax.jit(
        lambda p: evaluate(jax.random.key(123), jax.tree.map(lambda x: x[None], p))[0][0]
    )
    # A large random drift that hampers learning: ES must learn to shrink it where it hurts.
    init = lpo.init_drift(jax.random.key(0), CFG, output_scale=3.0)
    return fit, meta_objective, init


def test_es_improves_meta_objective_and_chunks_equal_one_run():
    fit, meta_objective, init = _problem()
    recipe = es.make_train(ES_CFG, fit, init)
    before = float(meta_objective(init))
    state, metrics = jax.jit(recipe.train)(jax.random.key(1), ES_HP)
    after = float(meta_objective(recipe.mean(state)))
    assert after > before + 0.5, (before, after)
    assert metrics["meta/fitness_mean"].shape == (ES_CFG.num_generations,)
    # 2 + 4 generations (what a resumed run does: the key and counters are in the state) equal 6.
    run = jax.jit(recipe.run, static_argnames="num_updates")
    s = recipe.init(jax.random.key(1), ES_HP)
    s, m1 = run(s, ES_HP, num_updates=2)
    s, m2 = run(s, ES_HP, num_updates=4)
    for a, b in zip(jax.tree.leaves(recipe.mean(state)), jax.tree.leaves(recipe.mean(s)), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        np.concatenate([m1["meta/fitness_mean"], m2["meta/fitness_mean"]]), metrics["meta/fitness_mean"])


def test_es_recipe_maximises_a_quadratic():
    """One sign flip only: a second flip (or none) would walk the mean away from the optimum."""
    target = {"a": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}

    def fit(key, pop):
        err = jax.tree.map(lambda x, t: jnp.sum(((x - t) ** 2).reshape(x.shape[0], -1), -1), pop, target)
        return -(err["a"] + err["b"]), {}

    init = jax.tree.map(jnp.zeros_like, target)
    recipe = es.make_train(es.ESConfig(population_size=16, num_generations=60), fit, init)
    state, m = jax.jit(recipe.train)(jax.random.key(0), es.HParams(lr=0.1, sigma=0.1, lr_decay=1.0,
                                                                  sigma_decay=1.0))
    dist = lambda p: float(sum(jnp.sum((x - t) ** 2) for x, t in zip(jax.tree.leaves(p),  # noqa: E731
                                                                      jax.tree.leaves(target), strict=True)))
    assert dist(recipe.mean(state)) < 0.1 * dist(init)
    assert float(m["meta/fitness_mean"][-5:].mean()) > float(m["meta/fitness_mean"][:5].mean())


def test_traced_es_hparams_do_not_recompile_and_decay_as_documented():
    traces = []

    def fit(key, pop):
        traces.append(1)  # runs once per trace, not per call
        return -jnp.sum(pop["x"] ** 2, -1), {}

    recipe = es.make_train(es.ESConfig(population_size=4, num_generations=5), fit,
                           {"x": jnp.ones(3)})
    train = jax.jit(recipe.train)
    hp = es.HParams(lr=0.1, lr_decay=0.5, lr_min=0.02, sigma=0.3, sigma_decay=0.5, sigma_min=0.1)
    _, m = train(jax.random.key(0), hp)
    n = len(traces)
    _, m2 = train(jax.random.key(0), hp.replace(lr=0.05, sigma=0.2))
    assert len(traces) == n
    # lr_t = max(lr 0.5^t, lr_min); sigma after generation t = max(sigma 0.5^t, sigma_min).
    np.testing.assert_allclose(m["meta/lr"], [0.1, 0.05, 0.025, 0.02, 0.02], rtol=1e-6)
    np.testing.assert_allclose(m["meta/sigma"], [0.3, 0.15, 0.1, 0.1, 0.1], rtol=1e-6)
    assert float(m2["meta/lr"][0]) == pytest.approx(0.05)


def test_cycled_fitness_functions_take_turns():
    def const(v):
        return lambda key, pop: (jnp.full(pop["x"].shape[:1], v), {f"fitness/t{v:g}": jnp.asarray(v)})

    recipe = es.make_train(es.ESConfig(population_size=4, num_generations=5), [const(1.0), const(2.0)],
                           {"x": jnp.zeros(2)})
    _, m = jax.jit(recipe.train)(jax.random.key(0), es.HParams())
    np.testing.assert_array_equal(m["meta/task"], [0, 1, 0, 1, 0])
    np.testing.assert_array_equal(m["meta/fitness_mean"], [1, 2, 1, 2, 1])
    # A task not evaluated at a generation repeats its last value (0 before its first).
    np.testing.assert_array_equal(m["fitness/t2"], [0, 2, 2, 2, 2])


def test_antithetic_pair_fitness_and_final_return():
    s = jnp.array([3.0, 1.0, 2.0, 1.0, 5.0, 2.0])
    np.testing.assert_array_equal(fitness.antithetic_pair_fitness(s), [1.0, 0.0, 0.5, 0.0, 1.0, 0.5])
    r = jnp.arange(10.0)
    np.testing.assert_allclose(fitness.final_return(r, 0.3), np.mean([7, 8, 9]))
    np.testing.assert_allclose(fitness.final_return(r, 0.0), 9.0)


def test_population_fitness_equals_member_loop():
    fit, _, init = _problem()
    s = es.make_train(ES_CFG, fit, init).strategy
    st = s.init(jax.random.key(0), init, ES_HP)
    pop, _ = s.ask(jax.random.key(1), st, ES_HP)
    f_pop, _ = jax.jit(fit)(jax.random.key(2), pop)
    f_one = jax.jit(fit)
    loop = [f_one(jax.random.key(2), jax.tree.map(lambda x, i=i: x[i : i + 1], pop))[0][0] for i in range(4)]
    np.testing.assert_allclose(f_pop[:4], np.array(loop), rtol=1e-5, atol=1e-6)


def test_bad_es_config_raises():
    with pytest.raises(ValueError, match="even"):
        es.ESConfig(population_size=5)
    with pytest.raises(ValueError, match="fitness_shaping"):
        es.ESConfig(fitness_shaping="nope")
    with pytest.raises(ValueError, match="lr must be a positive"):
        es.HParams(lr=-0.1).validate()
    with pytest.raises(ValueError, match="sigma_decay must be in"):
        es.HParams(sigma_decay=1.5).validate()


def test_fitness_normalises_between_floor_and_ppo_return():
    """Negative-return tasks (Acrobot: -500 random, about -80 PPO) map to the same [0, 1] scale."""
    returns = jnp.array([-500.0, -290.0, -80.0])

    def train(key, hparams, objective_params):
        del key, hparams
        return None, {"train/episode_return": jnp.full((5,), objective_params)}

    task = fitness.Task("acrobot", train, normaliser=-80.0, floor=-500.0)
    f, info = fitness.make_fitness([task], num_seeds=2, window_fraction=0.2)(jax.random.key(0), returns)
    np.testing.assert_allclose(f, [0.0, 0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(info["meta/return_acrobot"], returns.mean(), rtol=1e-6)
    with pytest.raises(ValueError, match="must exceed the floor"):
        fitness.Task("acrobot", train, normaliser=-500.0)
