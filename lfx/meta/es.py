"""Meta-training by evolution strategies: OpenAI-ES (evosax 0.3) over whole agent lifetimes.

    φ ← φ + Adam( 1/(P σ) Σ_i shape(F(φ + σ ε_i)) ε_i ),   ε_{P/2 + i} = -ε_i (antithetic),

with F a fitness that trains a fresh agent for a whole lifetime under the objective φ (see
`lfx.meta.fitness`), shape the centered-rank transform, and σ and the learning rate decayed
geometrically per generation (Salimans et al. 2017, arXiv:1703.03864; the LPO set-up of Lu et al.
2022, arXiv:2210.05639). Fitness is maximised here; evosax minimises, so the sign flips in exactly
one place (`make_generation_step`).

The population is evaluated by one call `fitness_fn(key, population) -> (fitness [P], info)`, which
vmaps members (and can be sharded by the caller). Antithetic members i and P/2 + i are evaluated
with the same key when the fitness uses common random numbers, which is also how the paper's
antithetic task sampling (both members of a pair on the same level) is expressed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from evosax.algorithms import Open_ES
from evosax.core import fitness_shaping

FitnessFn = Callable[[jax.Array, Any], tuple[jax.Array, dict[str, jax.Array]]]

FITNESS_SHAPING = {
    "centered_rank": fitness_shaping.centered_rank_fitness_shaping_fn,
    "standardize": fitness_shaping.standardize_fitness_shaping_fn,
    "identity": fitness_shaping.identity_fitness_shaping_fn,
}


@dataclasses.dataclass(frozen=True)
class ESConfig:
    """Static settings of OpenAI-ES meta-training.

    Defaults follow the gymnax re-implementation of LPO's ES (population 64, lr 0.03, σ 0.03, both
    ×0.99 per generation, centered ranks, Adam).
    """

    population_size: int = 64
    num_generations: int = 800
    learning_rate: float = 0.03
    lr_decay: float = 0.99
    lr_min: float = 1e-3
    sigma: float = 0.03
    sigma_decay: float = 0.99
    sigma_min: float = 1e-3
    antithetic: bool = True
    fitness_shaping: str = "centered_rank"

    def __post_init__(self):
        if self.population_size < 2 or (self.antithetic and self.population_size % 2):
            raise ValueError(
                f"population_size must be >= 2 and even with antithetic sampling, got "
                f"{self.population_size}."
            )
        if self.fitness_shaping not in FITNESS_SHAPING:
            raise ValueError(
                f"fitness_shaping must be one of {sorted(FITNESS_SHAPING)}, got "
                f"{self.fitness_shaping!r}."
            )
        if self.num_generations < 1 or self.sigma <= 0 or self.learning_rate <= 0:
            raise ValueError("num_generations, sigma and learning_rate must be positive.")


def _decay(value: float, rate: float, floor: float) -> optax.Schedule:
    # optax treats end_value as an upper bound when rate >= 1, so only pass the floor when decaying.
    if rate >= 1.0:
        return optax.constant_schedule(value)
    return optax.exponential_decay(value, 1, rate, end_value=min(floor, value))


def make_strategy(config: ESConfig, solution: Any) -> Open_ES:
    """OpenAI-ES for meta-parameters shaped like `solution` (any pytree of arrays)."""
    lr = _decay(config.learning_rate, config.lr_decay, config.lr_min)
    std = _decay(config.sigma, config.sigma_decay, config.sigma_min)
    return Open_ES(
        population_size=config.population_size,
        solution=solution,
        use_antithetic_sampling=config.antithetic,
        optimizer=optax.adam(lr),
        std_schedule=std,
        fitness_shaping_fn=FITNESS_SHAPING[config.fitness_shaping],
    )


def es_init(key: jax.Array, strategy: Open_ES, mean: Any) -> Any:
    """ES state centred on the meta-parameters `mean`."""
    return strategy.init(key, mean, strategy.default_params)


def make_generation_step(strategy: Open_ES, fitness_fn: FitnessFn) -> Callable:
    """One generation: ask, evaluate every member's lifetime, tell (fitness negated for evosax).

    Returns:
      step(key, es_state) -> (es_state, metrics) with metrics "meta/fitness_mean", "_max", "_min",
      "meta/fitness_center" (fitness of the mean when the fitness info has it) and the fitness info.
    """
    es_params = strategy.default_params

    def step(key, es_state):
        k_ask, k_fit, k_tell = jax.random.split(key, 3)
        population, es_state = strategy.ask(k_ask, es_state, es_params)
        fitness, info = fitness_fn(k_fit, population)
        es_state, _ = strategy.tell(k_tell, population, -fitness, es_state, es_params)
        metrics = {
            "meta/fitness_mean": jnp.mean(fitness),
            "meta/fitness_max": jnp.max(fitness),
            "meta/fitness_min": jnp.min(fitness),
            "meta/sigma": jnp.asarray(es_state.std),
            **info,
        }
        return es_state, metrics

    return step


def mean_params(strategy: Open_ES, es_state: Any) -> Any:
    """The ES mean as a meta-parameter pytree (the discovered objective)."""
    return strategy.get_mean(es_state)


_STEP_CACHE: dict[Any, Callable] = {}


def _compiled_step(config: ESConfig, solution: Any, strategy: Open_ES, fitness_fn: FitnessFn):
    # Reuse the jitted generation for the same fitness function, ES settings (the generation count
    # does not enter a step) and parameter structure, so a resumed run does not recompile.
    shapes = jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), solution)
    key = (id(fitness_fn), dataclasses.replace(config, num_generations=1), str(shapes))
    if key not in _STEP_CACHE:
        _STEP_CACHE[key] = (fitness_fn, jax.jit(make_generation_step(strategy, fitness_fn)))
    return _STEP_CACHE[key][1]


def _save(path: str, tree: Any) -> None:
    import orbax.checkpoint as ocp  # noqa: PLC0415

    ocp.PyTreeCheckpointer().save(os.path.abspath(path), tree, force=True)


def _restore(path: str, target: Any) -> Any:
    import orbax.checkpoint as ocp  # noqa: PLC0415

    return ocp.PyTreeCheckpointer().restore(os.path.abspath(path), item=target)


def meta_train_es(
    key: jax.Array,
    fitness_fn: FitnessFn,
    init_params: Any,
    config: ESConfig,
    *,
    workdir: str | None = None,
    checkpoint_every: int = 10,
    eval_fn: Callable[[jax.Array, Any], dict[str, Any]] | None = None,
    eval_every: int = 0,
    progress: bool = True,
    fitness_fns: list[FitnessFn] | None = None,
    max_minutes: float | None = None,
) -> tuple[Any, Any, list[dict[str, float]]]:
    """Runs OpenAI-ES meta-training (a Python loop over jitted generations).

    Args:
      key: typed PRNG key.
      fitness_fn: (key, population) -> (fitness [P], info); maximised.
      init_params: initial meta-parameters (the ES mean at generation 0).
      config: ES settings.
      workdir: if given, JSONL metrics go to `workdir/metrics.jsonl`, an orbax checkpoint of the ES
        state to `workdir/checkpoint` every `checkpoint_every` generations, and a run resumes from it.
      eval_fn: optional (key, mean_params) -> dict of floats, logged every `eval_every` generations.
      progress: show a tqdm progress bar.
      fitness_fns: optional list of fitness functions cycled over generations (e.g. one compiled
        lifetime each, for varied-lifetime meta-training); overrides `fitness_fn`.
      max_minutes: stop after this wall time (checkpointing first), so a budgeted run can be
        resumed later by calling again with the same workdir.

    Returns:
      (final mean meta-parameters, final ES state, list of per-generation metric dicts).
    """
    strategy = make_strategy(config, init_params)
    k_init, key = jax.random.split(key)
    es_state = es_init(k_init, strategy, init_params)
    fns = fitness_fns or [fitness_fn]
    steps = [_compiled_step(config, init_params, strategy, f) for f in fns]
    start = 0
    history: list[dict[str, float]] = []
    ckpt = metrics_path = None
    if workdir:
        os.makedirs(workdir, exist_ok=True)
        ckpt = os.path.join(workdir, "checkpoint")
        metrics_path = os.path.join(workdir, "metrics.jsonl")
        if os.path.exists(ckpt):
            target = {"es_state": es_state, "key": jax.random.key_data(key), "generation": 0}
            restored = _restore(ckpt, target)
            es_state = jax.tree.map(jnp.asarray, restored["es_state"])
            key = jax.random.wrap_key_data(jnp.asarray(restored["key"]))
            start = int(restored["generation"])
            if os.path.exists(metrics_path):
                with open(metrics_path) as f:
                    history = [json.loads(line) for line in f][:start]
    bar = None
    if progress:
        from tqdm.auto import tqdm  # noqa: PLC0415

        bar = tqdm(total=config.num_generations, initial=start, desc="ES")
    t0 = time.time()
    for gen in range(start, config.num_generations):
        key, k_gen, k_eval = jax.random.split(key, 3)
        es_state, metrics = steps[gen % len(steps)](k_gen, es_state)
        row = {"generation": gen + 1, "time_s": time.time() - t0}
        row.update({k: float(np.mean(v)) for k, v in metrics.items()})
        if eval_fn is not None and eval_every and ((gen + 1) % eval_every == 0):
            row.update({k: float(v) for k, v in eval_fn(k_eval, mean_params(strategy, es_state)).items()})
        history.append(row)
        if metrics_path:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")
        if ckpt and ((gen + 1) % checkpoint_every == 0 or gen + 1 == config.num_generations):
            _save(ckpt, {"es_state": es_state, "key": jax.random.key_data(key), "generation": gen + 1})
        out_of_time = max_minutes is not None and time.time() - t0 > 60 * max_minutes
        if ckpt and out_of_time and (gen + 1) % checkpoint_every:
            _save(ckpt, {"es_state": es_state, "key": jax.random.key_data(key), "generation": gen + 1})
        if bar is not None:
            bar.update(1)
            bar.set_postfix(fitness=f"{row['meta/fitness_mean']:.3f}")
        if out_of_time:
            break
    if bar is not None:
        bar.close()
    return mean_params(strategy, es_state), es_state, history
