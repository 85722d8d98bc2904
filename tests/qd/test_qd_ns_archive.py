"""The NS archive's insertion rule: 5 uniformly random granted offspring per generation (the authors'
`selection_operator = 'random'`, GPaolo/STAX base_evolver.py `update_archive`) or the most novel."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from lfx.qd.ns import NSConfig, make_generation
from lfx.qd.recipe import HParams
from lfx.qd.task import init_tracker, make_task

DRAWS = 1000


@pytest.fixture(scope="module")
def task():
    return make_task("PointMass-sparse", hidden=(2,), max_steps_in_episode=3, max_speed=0.2)


_FNS = {}


def _inserted(task, strategy, limit):
    """Offspring indices [DRAWS, 5] archived by one generation from the same state, DRAWS keys."""
    if strategy not in _FNS:  # one compilation per strategy; the limit is traced
        cfg = NSConfig(population_size=10, offspring_per_parent=2, archive_capacity=50, archive_add=5,
                       archive_strategy=strategy, k=3)
        init, step, _ = make_generation(task, cfg)
        state, tracker = init(jax.random.key(0), init_tracker(task, 10_000), None)

        def one(key, lim):
            new, _, info = step(key, state, tracker, None, HParams(), False, lim)
            # archived genomes (slots 0..4 of an empty archive) -> their offspring index
            d = jnp.linalg.norm(new.archive.genomes[:5, None] - info["genomes"][None], axis=-1)
            return jnp.argmin(d, axis=1), info["novelty"], new.archive.count

        _FNS[strategy] = jax.jit(jax.vmap(one, in_axes=(0, None)))
    idx, nov, count = _FNS[strategy](jax.random.split(jax.random.key(1), DRAWS), jnp.asarray(limit))
    assert np.all(np.asarray(count) == 5)
    return np.asarray(idx), np.asarray(nov)


@pytest.mark.parametrize("limit", [10_000, 12])
def test_random_additions_are_uniform_over_the_granted_offspring(task, limit):
    idx, _ = _inserted(task, "random", limit)
    n = min(limit, 20)  # with limit 12 only the first 12 offspring are evaluated
    assert np.all(idx < n)
    assert all(len(set(row)) == 5 for row in idx)  # 5 distinct offspring per generation
    counts = np.bincount(idx.ravel(), minlength=n)
    chi2, p = stats.chisquare(counts)  # expected DRAWS * 5 / n each
    assert p > 1e-3, (counts, chi2, p)


def test_most_novel_option_archives_the_top_five(task):
    idx, nov = _inserted(task, "novel", 10_000)
    for row, v in zip(idx[:50], nov[:50]):
        assert set(row.tolist()) == set(np.argsort(-v, kind="stable")[:5].tolist())


def test_random_is_the_default_and_bad_strategies_are_refused():
    assert NSConfig().archive_strategy == "random"
    with pytest.raises(ValueError, match="archive_strategy"):
        NSConfig(archive_strategy="best")
