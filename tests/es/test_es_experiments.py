"""ES experiments on the shared spine: the search recipe, validation before anything runs, and
experiments/es_bbob.py killed then resumed == uninterrupted (subprocesses, tiny grid)."""

import hashlib
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.es import SearchConfig, SearchHParams, bbob, make_search, make_strategy, make_train
from lfx.es.experiment import ESSettings, EvoLLMSettings, ablation_variants, validate_settings
from lfx.experiment import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "experiments", "es_bbob.py")
TINY = ["--config.strategies=random_search,hill_climbing", "--config.fns=sphere,rastrigin",
        "--config.dims=2", "--config.num_seeds=2", "--config.num_generations=3", "--noprogress"]


def test_search_recipe_chunked_equals_one_call_and_make_search():
    strategy = make_strategy("snes", population_size=4, num_dims=2)
    fitness = bbob.make_fitness(("rastrigin",), 2)
    task = bbob.make_task("rastrigin", 2, 0)
    recipe = make_train(SearchConfig(num_generations=6), strategy, fitness)
    params, key = strategy.default_params, jax.random.key(3)
    hp = SearchHParams(init_mean=jnp.float32(0.5))
    run = jax.jit(recipe.run, static_argnames="num_updates")
    state = recipe.init(key, hp, params, task)
    state, m1 = run(state, hp, params, task, num_updates=2)
    state, m2 = run(state, hp, params, task, num_updates=4)
    _, m_all = jax.jit(recipe.train)(key, hp, params, task)
    _, m_old = jax.jit(make_search(strategy, fitness, 6))(key, jnp.full(2, 0.5), params, task)
    for k in m_all:
        np.testing.assert_array_equal(np.concatenate([m1[k], m2[k]]), m_all[k])
        np.testing.assert_array_equal(m_all[k], m_old[k])
    assert int(state.generation) == 6
    with pytest.raises(ValueError, match="num_generations must be >= 1"):
        make_train(SearchConfig(num_generations=0), strategy, fitness)


def test_settings_are_validated_with_messages_that_say_what_to_change():
    with pytest.raises(ConfigError, match=r"Unknown strategy 'cmaes'.*'cma_es'.*Known: "):
        validate_settings(ESSettings(strategies="random_search,cmaes"), (2,))
    with pytest.raises(ConfigError, match="num_generations must be >= 1"):
        validate_settings(ESSettings(num_generations=0), (2,))
    with pytest.raises(ConfigError, match="must look like 'field=v1,v2,...'"):
        validate_settings(ESSettings(ablation="sort_order"), (2,))
    with pytest.raises(ConfigError, match=r"'sortorder' is not a field.*'sort_order'"):
        validate_settings(ESSettings(ablation="sortorder=random"), (2,))
    with pytest.raises(ConfigError, match="not a valid int for 'x_decimals'"):
        validate_settings(ESSettings(ablation="x_decimals=1,two"), (2,))
    with pytest.raises(ConfigError, match="sort_order must be one of"):
        validate_settings(ESSettings(strategies="evollm", ablation="sort_order=sideways",
                                     evollm=EvoLLMSettings(lm="toy")), (2,))
    with pytest.raises(ConfigError, match="population_size must be even"):
        validate_settings(ESSettings(strategies="open_es", population_size=5), (2,))
    with pytest.raises(ConfigError, match="needs evollm.lm_path"):
        validate_settings(ESSettings(strategies="evollm",
                                     evollm=EvoLLMSettings(lm="teacher")), (2,))
    variants = ablation_variants(ESSettings(ablation="open_es_lr=0.1,0.3"))
    assert [(label, s.open_es_lr) for label, s in variants] == [("open_es_lr=0.1", 0.1),
                                                               ("open_es_lr=0.3", 0.3)]


def _run(*args, cwd, timeout=300):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, SCRIPT, *TINY, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _rows(path):
    rows = [json.loads(line) for line in open(path)]
    for r in rows:
        r.pop("wall_s_batch")
    return sorted(rows, key=lambda r: r["cell"])


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_es_bbob_killed_then_resumed_equals_uninterrupted_and_bad_input_is_refused(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    out = _run(f"--workdir={full}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    out = _run(f"--workdir={killed}", "--stop_after_cells=3", cwd=tmp_path)
    assert out.returncode != 0  # SIGKILLed in the middle of the first strategy's batch
    assert len(open(killed / "results.jsonl").readlines()) == 3
    out = _run(f"--workdir={killed}", "--resume", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "8 cells (1 dims x 8), 5 to compute, 3 already in" in out.stdout
    assert _rows(killed / "results.jsonl") == _rows(full / "results.jsonl")
    assert len(_rows(full / "results.jsonl")) == 8
    # refused before the workdir is touched: the results keep their hash
    before = _sha(full / "results.jsonl")
    out = _run(f"--workdir={full}", "--resume", "--config.strategies=random_search,cmaes",
               cwd=tmp_path)
    assert out.returncode != 0 and "Unknown strategy 'cmaes'" in out.stderr
    assert "cma_es" in out.stderr
    out = _run(f"--workdir={full}", cwd=tmp_path)  # same config, no --resume: never overwritten
    assert out.returncode != 0 and "pass --resume" in out.stderr
    assert _sha(full / "results.jsonl") == before
