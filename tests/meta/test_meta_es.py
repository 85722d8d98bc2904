"""ES meta-training on a tiny inner problem: improvement, resume, antithetic pairing, fitness pieces."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.meta import bandit, es, fitness, lpo

CFG = lpo.DriftConfig(hidden_size=16)
BANDIT = bandit.BanditConfig(num_updates=10, learning_rate=0.5)
ES_CFG = es.ESConfig(
    population_size=16, num_generations=6, learning_rate=0.2, sigma=0.2, lr_decay=1.0, sigma_decay=1.0
)


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


def test_es_improves_meta_objective_and_resumes(tmp_path):
    fit, meta_objective, init = _problem()
    before = float(meta_objective(init))
    mean, _, hist = es.meta_train_es(
        jax.random.key(1), fit, init, ES_CFG, workdir=str(tmp_path / "full"), progress=False
    )
    after = float(meta_objective(mean))
    assert after > before + 0.5, (before, after)
    assert len(hist) == ES_CFG.num_generations
    # Interrupted after 3 generations, then resumed: identical to the uninterrupted run.
    import dataclasses

    short = dataclasses.replace(ES_CFG, num_generations=3)
    es.meta_train_es(
        jax.random.key(1), fit, init, short, workdir=str(tmp_path / "r"), checkpoint_every=3,
        progress=False,
    )
    resumed, _, hist_r = es.meta_train_es(
        jax.random.key(1), fit, init, ES_CFG, workdir=str(tmp_path / "r"), progress=False
    )
    for a, b in zip(jax.tree.leaves(mean), jax.tree.leaves(resumed)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    lines = (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == ES_CFG.num_generations and len(hist_r) == ES_CFG.num_generations


def test_antithetic_pair_fitness_and_final_return():
    s = jnp.array([3.0, 1.0, 2.0, 1.0, 5.0, 2.0])
    np.testing.assert_array_equal(fitness.antithetic_pair_fitness(s), [1.0, 0.0, 0.5, 0.0, 1.0, 0.5])
    r = jnp.arange(10.0)
    np.testing.assert_allclose(fitness.final_return(r, 0.3), np.mean([7, 8, 9]))
    np.testing.assert_allclose(fitness.final_return(r, 0.0), 9.0)


def test_population_fitness_equals_member_loop():
    fit, _, init = _problem()
    s = es.make_strategy(ES_CFG, init)
    st = es.es_init(jax.random.key(0), s, init)
    pop, _ = s.ask(jax.random.key(1), st, s.default_params)
    f_pop, _ = jax.jit(fit)(jax.random.key(2), pop)
    f_one = jax.jit(fit)
    loop = [f_one(jax.random.key(2), jax.tree.map(lambda x, i=i: x[i : i + 1], pop))[0][0] for i in range(4)]
    np.testing.assert_allclose(f_pop[:4], np.array(loop), rtol=1e-5, atol=1e-6)


def test_bad_es_config_raises():
    with pytest.raises(ValueError, match="even"):
        es.ESConfig(population_size=5)
    with pytest.raises(ValueError, match="fitness_shaping"):
        es.ESConfig(fitness_shaping="nope")


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
