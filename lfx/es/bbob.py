"""BBOB black-box functions as lfx fitness functions (maximised), single and randomly sampled.

Functions are evosax's implementations of the COCO/BBOB suite (Hansen et al. 2009, "Real-Parameter
Black-Box Optimization Benchmarking 2009: Noiseless Functions Definitions", inria-00362633):
f(x) = f_fn(x; x_opt, R, Q) + f_pen(x) + f_opt. lfx's fitness is -f(x); the regret f(x) - f_opt >= 0
is what the experiments report.

A task is a `BBOBTask` (traced arrays), so a batch of tasks is a `vmap` and task sampling is a pure
function of a key (for teacher trajectories / meta-training).
"""

from __future__ import annotations

import jax
from evosax.problems.bbob.bbob_fns import bbob_fns
from evosax.problems.bbob.meta_bbob import MetaBBOBProblem
from evosax.problems.bbob.meta_bbob import Params as BBOBTask  # fn_id, num_dims, x_opt, f_opt, R, Q

BBOB_FNS = tuple(bbob_fns)  # all 24 names, in COCO order
# The eight functions of the EvoLLM comparison (issue 4).
EVOLLM_FNS = (
    "sphere",
    "ellipsoidal",
    "rosenbrock",
    "rastrigin",
    "discus",
    "attractive_sector",
    "different_powers",
    "schaffers_f7",
)
X_RANGE = (-5.0, 5.0)



def _meta(fn_names, num_dims):
    for n in fn_names:
        if n not in bbob_fns:
            raise ValueError(f"Unknown BBOB function {n!r}; choose from {list(bbob_fns)}.")
    if num_dims < 1:
        raise ValueError(f"num_dims must be >= 1, got {num_dims}.")
    return MetaBBOBProblem(
        fn_names=list(fn_names),
        min_num_dims=num_dims,
        max_num_dims=num_dims,
        noise_config={"noise_model_names": ["noiseless"], "use_stabilization": True},
    )


def sample_task(key: jax.Array, fn_names, num_dims: int) -> BBOBTask:
    """Samples a BBOB task: function (uniform over `fn_names`), x_opt ~ U[-4, 4]^D, f_opt, R, Q."""
    return _meta(tuple(fn_names), num_dims).sample_params(key)


def make_task(fn_name: str, num_dims: int, seed: int = 0) -> BBOBTask:
    """The task `evosax.problems.BBOBProblem(fn_name, num_dims, seed=seed)` evaluates (same key use)."""
    key_params, _ = jax.random.split(jax.random.key(seed))
    return sample_task(key_params, (fn_name,), num_dims)


def make_fitness(fn_names, num_dims: int):
    """Returns `fitness(key, population [N, D], task) -> (fitness [N], regret [N])`.

    fitness = -f(x) (maximised), regret = f(x) - f_opt. `task.fn_id` indexes `fn_names`.
    """
    meta = _meta(tuple(fn_names), num_dims)
    state = meta.init(jax.random.key(0), None)

    def fitness(key, population, task):
        value, _, _ = meta.eval(key, population, state, task)
        return -value, value - task.f_opt

    return fitness
