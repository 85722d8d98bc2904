"""The recipe shape of lfx.qd's scan algorithms (NS, MAP-Elites, random search, OpenAI-ES).

    recipe = make_ns(task, NSConfig(), budget=10_000)        # or make_map_elites, ...
    state = recipe.init(key, HParams())
    state, metrics = recipe.run(state, HParams(sigma=0.1), num_updates=recipe.num_updates)
    state, metrics = recipe.train(key, HParams())            # the whole budget, one lax.scan

An update is one generation. Every generation asks the budget for a fixed number of evaluations, so
`num_updates` (the generations that spend the budget exactly) is known before anything runs and is
the same for every seed and setting: `jax.vmap` over keys and `HParams` batches is one call. The
metrics are the shared `Tracker`'s summary after each generation, `[num_updates]` each.

`HParams` holds every float a user sweeps; they are traced, so a new value never recompiles and a
grid of settings is one vmapped call. The caller jits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp

from lfx.qd import metrics as qd_metrics
from lfx.qd.task import Tracker

METRICS = ("evaluations", "coverage", "uniformity", "reward_areas", "best_reward")


@flax.struct.dataclass
class HParams:
    """Traced hyperparameters of lfx.qd (a batch of them with a leading axis is a sweep).

    sigma: std of the Gaussian mutation of NS offspring (also the exploration half of SERENE /
      STAX and TAXONS) and of MAP-Elites children.
    mutation_prob: probability that an NS offspring is mutated (otherwise a copy of its parent).
    es_sigma: OpenAI-ES's perturbation std (0.3: experiments/qd_es_sweep.py's pick on Curling).
    es_lr: OpenAI-ES's Adam learning rate (0.05, likewise).
    ae_lr: Adam learning rate of TAXONS' / STAX's autoencoder.
    """

    sigma: float = 0.05
    mutation_prob: float = 1.0
    es_sigma: float = 0.3
    es_lr: float = 0.05
    ae_lr: float = 3e-3

    def validate(self) -> None:
        """Refuses values that cannot be meant (call on concrete values, before compiling)."""
        if not self.sigma >= 0:
            raise ValueError(f"hparams.sigma (mutation std) must be >= 0, got {self.sigma}.")
        if not 0 <= self.mutation_prob <= 1:
            raise ValueError(
                f"hparams.mutation_prob must be in [0, 1], got {self.mutation_prob}.")
        if not self.es_sigma > 0:
            raise ValueError(f"hparams.es_sigma (OpenAI-ES std) must be positive, got "
                             f"{self.es_sigma}.")
        if not self.es_lr > 0:
            raise ValueError(f"hparams.es_lr (OpenAI-ES step size) must be positive, got "
                             f"{self.es_lr}.")
        if not self.ae_lr > 0:
            raise ValueError(f"hparams.ae_lr must be positive, got {self.ae_lr}.")


@flax.struct.dataclass
class QDState:
    key: jax.Array  # the run's key; generation g uses fold_in(key, g)
    generation: jax.Array  # [] int32
    tracker: Tracker
    search: Any  # the algorithm's own state (population, archive, grid, ES state, ...)


class QDRecipe(NamedTuple):
    """A scan QD algorithm: `init(key, hparams)`, `run(state, hparams, *, num_updates)`, `train`."""

    config: Any
    budget: int
    num_updates: int  # generations that spend `budget` exactly
    init: Callable[[jax.Array, HParams], QDState]
    run: Callable[..., tuple[QDState, dict[str, jax.Array]]]
    train: Callable[[jax.Array, HParams], tuple[QDState, dict[str, jax.Array]]]


def generations_for_budget(budget: int, initial: int, per_generation: int, what: str) -> int:
    """Generations of `per_generation` evaluations after `initial` ones that spend `budget`.

    Raises:
      ValueError: a budget that is not positive or leaves nothing after the initial evaluations.
    """
    if not isinstance(budget, int) or budget <= 0:
        raise ValueError(f"The evaluation budget must be a positive integer, got {budget!r}.")
    if per_generation <= 0:
        raise ValueError(f"{what}: evaluations per generation must be positive, got {per_generation}.")
    if budget <= initial:
        raise ValueError(
            f"{what}: the budget ({budget}) must exceed the {initial} evaluations of the initial "
            f"population; raise the budget or lower population_size.")
    return math.ceil((budget - initial) / per_generation)


def tracker_metrics(tracker: Tracker) -> dict[str, jax.Array]:
    """The Tracker's summary as arrays (jittable), keys `qd/<metric>`."""
    return {
        "qd/evaluations": tracker.counter.used,
        "qd/coverage": qd_metrics.coverage(tracker.grid),
        "qd/uniformity": qd_metrics.uniformity(tracker.grid),
        "qd/reward_areas": tracker.found.sum().astype(jnp.int32),
        "qd/best_reward": jnp.maximum(tracker.best_reward, 0.0),
    }


def _strongly_typed(x):
    # A weak-typed leaf (e.g. evosax's `best_fitness=jnp.inf`) leaves the first chunk strongly
    # typed, and the harness's second call would compile `run` again.
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        return x
    return jnp.asarray(x, dtype=x.dtype)


def make_scan_recipe(
    config: Any,
    budget: int,
    num_updates: int,
    init_search: Callable[[jax.Array, HParams], tuple[Any, Tracker, jax.Array]],
    generation: Callable[[jax.Array, Any, Tracker, HParams], tuple[Any, Tracker]],
) -> QDRecipe:
    """A `QDRecipe` from an algorithm's pieces.

    Args:
      config: the algorithm's static config (kept in the recipe).
      budget: the evaluation budget.
      num_updates: generations of the whole run.
      init_search: `(key, hparams) -> (search state, tracker, generation key)`.
      generation: `(key, search, tracker, hparams) -> (search, tracker)`, one generation; its key is
        `fold_in(generation key, g)` for generation g = 0, 1, ...
    """

    def init(key, hparams):
        search, tracker, gen_key = init_search(key, hparams)
        state = QDState(key=gen_key, generation=jnp.zeros((), jnp.int32), tracker=tracker,
                        search=search)
        return jax.tree.map(_strongly_typed, state)

    def run(state, hparams, *, num_updates):
        def body(s, _):
            search, tracker = generation(jax.random.fold_in(s.key, s.generation), s.search,
                                         s.tracker, hparams)
            s = s.replace(generation=s.generation + 1, tracker=tracker, search=search)
            return s, tracker_metrics(tracker)

        return jax.lax.scan(body, state, None, length=num_updates)

    def train(key, hparams):
        return run(init(key, hparams), hparams, num_updates=num_updates)

    return QDRecipe(config=config, budget=budget, num_updates=num_updates, init=init, run=run,
                    train=train)
