"""Meta-training by evolution strategies: OpenAI-ES over whole agent lifetimes, as a recipe.

    φ ← φ + Adam_{lr_t}( 1/(P σ_t) Σ_i shape(F(φ + σ_t ε_i)) ε_i ),   ε_{P/2 + i} = -ε_i (antithetic),

with F a fitness that trains a fresh agent for a whole lifetime under the objective φ (see
`lfx.meta.fitness`), shape the centered-rank transform, and σ_t and lr_t decayed geometrically per
generation down to a floor (Salimans et al. 2017, arXiv:1703.03864; the LPO set-up of Lu et al.
2022, arXiv:2210.05639). The strategy is lfx's one evosax boundary
(`lfx.es.make_strategy("open_es", solution=φ)`): fitness is maximised here and the sign flips in
`lfx.es.Strategy.tell` only.

    recipe = make_train(ESConfig(population_size=16, num_generations=60), fitness_fn, init_params)
    state, metrics = jax.jit(recipe.train)(key, HParams(lr=0.05, sigma=0.05))  # metrics: [G]
    phi = recipe.mean(state)

`HParams` (lr, σ, their decays and floors) are traced: a batch of them is a vmapped sweep and a new
value does not recompile. `run(state, hparams, num_updates=n)` runs n generations, so the host
harness (`lfx.experiment.run_chunked`) can checkpoint and resume between chunks; the state carries
the PRNG key, so a chunked or resumed run equals an uninterrupted one.

The population is evaluated by one call `fitness_fn(key, population) -> (fitness [P], info)`, which
vmaps members. With several fitness functions (one compiled lifetime each) they are cycled over
generations (`lax.switch` on the generation); each generation's metrics then hold every function's
info, those not evaluated at that generation repeating their last value, and "meta/task" names the
one that ran.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from lfx.es import open_es
from lfx.es.strategies import FITNESS_SHAPING, Strategy, make_strategy

FitnessFn = Callable[[jax.Array, Any], tuple[jax.Array, dict[str, jax.Array]]]


@dataclasses.dataclass(frozen=True)
class ESConfig:
    """Static settings of OpenAI-ES meta-training (the floats are in `HParams`).

    Defaults follow the gymnax re-implementation of LPO's ES (population 64, centered ranks, Adam).
    """

    population_size: int = 64
    num_generations: int = 800
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
        if self.num_generations < 1:
            raise ValueError(f"num_generations must be >= 1, got {self.num_generations}.")


@struct.dataclass
class HParams(open_es.Params):
    """Traced ES settings: lr and σ at generation 0, their per-generation decay and floor.

    Defaults: the gymnax LPO ES (lr 0.03, σ 0.03, both x0.99 per generation, floors 1e-3).
    """

    lr: float = 0.03
    lr_decay: float = 0.99
    lr_min: float = 1e-3
    sigma: float = 0.03
    sigma_decay: float = 0.99
    sigma_min: float = 1e-3


@struct.dataclass
class ESState:
    """The meta-training carry: the strategy's state, the PRNG key, the generation and last info."""

    es_state: Any
    key: jax.Array
    generation: jax.Array  # int32 scalar: generations done
    info: dict[str, jax.Array]  # the latest value of every fitness-info metric


class ESRecipe(NamedTuple):
    """`init(key, hparams)`, `run(state, hparams, *, num_updates)`, `train(key, hparams)`,
    `mean(state)` (the current meta-parameters); `num_updates` = generations of a whole run."""

    config: ESConfig
    strategy: Strategy
    num_updates: int
    init: Callable[..., ESState]
    run: Callable[..., tuple[ESState, dict[str, jax.Array]]]
    train: Callable[..., tuple[ESState, dict[str, jax.Array]]]
    mean: Callable[[ESState], Any]


def _strategy(config: ESConfig, solution: Any) -> Strategy:
    """The OpenAI-ES `Strategy` of `config` for meta-parameters shaped like `solution`."""
    return make_strategy(
        "open_es", population_size=config.population_size, solution=solution,
        antithetic=config.antithetic, fitness_shaping=config.fitness_shaping,
    )


def _info_like(fns: Sequence[FitnessFn], population: Any) -> dict[str, jax.ShapeDtypeStruct]:
    out = {}
    for fn in fns:
        _, info = jax.eval_shape(fn, jax.random.key(0), population)
        out.update(info)
    return out


def make_train(config: ESConfig, fitness_fns: FitnessFn | Sequence[FitnessFn], init_params: Any
               ) -> ESRecipe:
    """Builds the ES meta-training recipe.

    Args:
      config: static ES settings.
      fitness_fns: `(key, population) -> (fitness [P], info)`, maximised; or a list of them, cycled
        over generations (e.g. one compiled lifetime each, for varied-lifetime meta-training).
      init_params: the meta-parameters the ES mean starts from (a pytree of arrays).

    Returns:
      the `ESRecipe`; `train(key, hparams)` returns metrics [num_generations]: "meta/fitness_mean",
      "_max", "_min", "meta/sigma" (σ after the generation), "meta/lr" (Adam's step size at it),
      "meta/task" and the fitness info.
    """
    fns = list(fitness_fns) if isinstance(fitness_fns, (list, tuple)) else [fitness_fns]
    if not fns:
        raise ValueError("make_train needs at least one fitness function.")
    strategy = _strategy(config, init_params)
    population_like = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct((config.population_size, *jnp.shape(x)), jnp.result_type(x)),
        init_params)
    info_like = _info_like(fns, population_like)

    def evaluate(k, population, generation, last_info):
        def branch(fn):
            def call(key, pop, last):
                fitness, info = fn(key, pop)
                return fitness, {**last, **info}
            return call

        if len(fns) == 1:
            return branch(fns[0])(k, population, last_info)
        return jax.lax.switch(generation % len(fns), [branch(f) for f in fns], k, population,
                              last_info)

    def init(key, hparams):
        k_init, key = jax.random.split(key)
        es_state = strategy.init(k_init, init_params, hparams)
        info = {k: jnp.zeros(v.shape, v.dtype) for k, v in info_like.items()}
        return ESState(es_state, key, jnp.zeros((), jnp.int32), info)

    def run(state, hparams, *, num_updates):
        def generation(s, _):
            key, k_gen, _ = jax.random.split(s.key, 3)  # the third key was the old eval hook's
            k_ask, k_fit, k_tell = jax.random.split(k_gen, 3)
            lr = open_es.decayed(hparams.lr, hparams.lr_decay, hparams.lr_min,
                                 s.es_state.generation_counter)
            population, es_state = strategy.ask(k_ask, s.es_state, hparams)
            fitness, info = evaluate(k_fit, population, s.generation, s.info)
            es_state, _ = strategy.tell(k_tell, population, fitness, es_state, hparams)
            metrics = {
                "meta/fitness_mean": jnp.mean(fitness),
                "meta/fitness_max": jnp.max(fitness),
                "meta/fitness_min": jnp.min(fitness),
                "meta/sigma": jnp.asarray(es_state.std),
                "meta/lr": jnp.asarray(lr, jnp.float32),
                "meta/task": s.generation % len(fns),
                **{k: jnp.mean(v) for k, v in info.items()},
            }
            return ESState(es_state, key, s.generation + 1, info), metrics

        return jax.lax.scan(generation, state, None, num_updates)

    def train(key, hparams):
        return run(init(key, hparams), hparams, num_updates=config.num_generations)

    def mean(state):
        return strategy.mean(state.es_state)

    return ESRecipe(config, strategy, config.num_generations, init, run, train, mean)


def harness_functions(recipe: ESRecipe, keys: jax.Array, hparams: HParams):
    """`(init, run)` for `lfx.experiment.run_chunked`; metrics `[H, S, n]` for H settings x S seeds.

    One run (H = S = 1) is jitted unbatched, so cycled fitness functions stay a real conditional
    (under `vmap` a `lax.switch` on a batched generation evaluates every branch); several runs go
    through `lfx.experiment.recipe_functions` (vmapped settings x seeds). Use `means` for the
    meta-parameters of the returned state.
    """
    num_settings = jax.tree.leaves(hparams)[0].shape[0]
    if num_settings == 1 and keys.shape[0] == 1:
        hp = jax.tree.map(lambda x: jnp.asarray(x[0]), hparams)
        key = keys[0]
        init = jax.jit(lambda: recipe.init(key, hp))
        run_one = jax.jit(recipe.run, static_argnames="num_updates")

        def run(state, n):
            state, metrics = run_one(state, hp, num_updates=n)
            return state, jax.tree.map(lambda x: x[None, None], metrics)

        return init, run
    from lfx.experiment.harness import recipe_functions  # noqa: PLC0415

    return recipe_functions(recipe, keys, hparams)


def means(recipe: ESRecipe, state: ESState, num_settings: int, num_seeds: int) -> Any:
    """The meta-parameters of every run of a `harness_functions` state: leaves `[H, S, ...]`."""
    if num_settings == 1 and num_seeds == 1:
        return jax.tree.map(lambda x: x[None, None], recipe.mean(state))
    return jax.vmap(jax.vmap(recipe.mean))(state)
