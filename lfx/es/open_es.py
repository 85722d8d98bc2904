"""OpenAI-ES whose learning rate and σ are traced parameters (evosax's `Params`), not constants.

    g_t = 1/(P σ_t) Σ_i shape(f_i) ε_i,     μ_{t+1} = μ_t - Adam_{lr_t}(g_t),
    lr_t = max(lr · lr_decay^t, min(lr_min, lr)),   σ_t likewise from (sigma, sigma_decay, sigma_min),

evosax's `Open_ES` (Salimans et al. 2017, "Evolution Strategies as a Scalable Alternative to
Reinforcement Learning", arXiv:1703.03864) with its schedules moved from the constructor into
`Params`, the struct dataclass evosax passes to `init/ask/tell` as a traced argument: a batch of
`Params` is a vmapped sweep over learning rates and σ, and a new value does not recompile. Adam's
step size enters through `optax.inject_hyperparams`, set from `Params` at every `tell`.

The arithmetic is optax's: `lr_t` equals `optax.exponential_decay(lr, 1, lr_decay,
end_value=min(lr_min, lr))(t)` for `lr_decay < 1` and `lr` for `lr_decay = 1`, so a run with
`Params` reproduces one built with those schedules bit for bit. evosax minimises the fitness it is
told; lfx's `Strategy.tell` (lfx.es.strategies) negates it, the one sign flip.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from evosax.algorithms.distribution_based import open_es as evosax_open_es
from evosax.core.fitness_shaping import centered_rank_fitness_shaping_fn
from flax import struct


@struct.dataclass
class Params(evosax_open_es.Params):
    """Traced OpenAI-ES settings (a batch of them is a sweep).

    lr: Adam step size at generation 0; lr_decay: its factor per generation; lr_min: its floor.
    sigma: perturbation scale at generation 0; sigma_decay, sigma_min: likewise.
    """

    lr: float = 0.03
    lr_decay: float = 1.0
    lr_min: float = 0.0
    sigma: float = 0.03
    sigma_decay: float = 1.0
    sigma_min: float = 0.0

    def validate(self, prefix: str = "hparams") -> None:
        """Raises ValueError, saying what to change, for concrete values that cannot search."""
        checks = {
            "lr": (lambda v: v > 0, "a positive step size, e.g. 0.03"),
            "sigma": (lambda v: v > 0, "a positive perturbation scale, e.g. 0.03"),
            "lr_decay": (lambda v: 0 < v <= 1, "in (0, 1]: 1 keeps it constant"),
            "sigma_decay": (lambda v: 0 < v <= 1, "in (0, 1]: 1 keeps it constant"),
            "lr_min": (lambda v: v >= 0, ">= 0"),
            "sigma_min": (lambda v: v >= 0, ">= 0"),
        }
        for name, (ok, what) in checks.items():
            value = getattr(self, name)
            if isinstance(value, jax.core.Tracer):
                continue
            values = np.ravel(np.asarray(value, np.float64))
            if not all(ok(float(v)) for v in values):
                raise ValueError(f"config.{prefix}.{name} must be {what}, got {value}.")


def decayed(value, rate, floor, count):
    """max(value · rate^count, min(floor, value)): optax.exponential_decay's formula, traced rate.

    For rate = 1 this is `value` exactly (optax's constant schedule); the floor only bites when
    decaying, as in optax (which treats `end_value` as an upper bound when the rate is >= 1).
    """
    p = count / 1  # optax: (count - transition_begin) / transition_steps, a float
    value_t = jnp.where(count <= 0, value, value * jnp.power(rate, p))
    return jnp.maximum(value_t, jnp.minimum(floor, value))


_ADAM_STATIC = ("b1", "b2", "eps", "eps_root", "nesterov")


class TracedOpenES(evosax_open_es.Open_ES):
    """evosax `Open_ES` with Adam and lr/σ schedules read from the traced `Params`."""

    def __init__(
        self,
        population_size: int,
        solution,
        *,
        default_params: Params = Params(),
        use_antithetic_sampling: bool = True,
        fitness_shaping_fn: Callable = centered_rank_fitness_shaping_fn,
        **kwargs,
    ):
        self._params = default_params
        super().__init__(
            population_size,
            solution,
            use_antithetic_sampling=use_antithetic_sampling,
            # Only the step size is injected: Adam's b1, b2, eps stay Python constants, as in
            # `optax.adam(lr)`, so (1 - b1) is rounded the same way.
            optimizer=optax.inject_hyperparams(optax.adam, static_args=_ADAM_STATIC)(
                learning_rate=default_params.lr),
            fitness_shaping_fn=fitness_shaping_fn,
            **kwargs,
        )

    @property
    def _default_params(self) -> Params:
        return self._params

    def _init(self, key: jax.Array, params: Params):
        state = super()._init(key, params)
        opt_state = self.optimizer.init(jnp.zeros(self.num_dims))
        return state.replace(
            std=decayed(params.sigma, params.sigma_decay, params.sigma_min, 0),
            opt_state=_set_lr(opt_state, params.lr),
        )

    def _tell(self, key, population, fitness, state, params: Params):
        t = state.generation_counter
        lr_t = decayed(params.lr, params.lr_decay, params.lr_min, t)
        grad = jnp.dot(fitness, (population - state.mean) / state.std) / (
            self.population_size * state.std
        )
        updates, opt_state = self.optimizer.update(grad, _set_lr(state.opt_state, lr_t), state.mean)
        mean = optax.apply_updates(state.mean, updates)
        # evosax sets σ for the next generation from the counter before its increment.
        std = decayed(params.sigma, params.sigma_decay, params.sigma_min, t)
        return state.replace(mean=mean, std=std, opt_state=opt_state)


def _set_lr(opt_state, lr):
    hp = dict(opt_state.hyperparams)
    hp["learning_rate"] = jnp.asarray(lr, hp["learning_rate"].dtype)
    return opt_state._replace(hyperparams=hp)
