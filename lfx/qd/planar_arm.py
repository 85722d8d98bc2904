"""The planar arm, QD's toy task, as a pure function and as an lfx.qd `Task` (no environment).

A genome x in [0, 1]^n holds the normalised joint angles of an n-joint planar arm of total length 1
(Cully et al. 2015, "Robots that can adapt like animals", arXiv:1407.3501; Vassiliades & Mouret 2018):

    x      = clip(x, 0, 1)
    a_k    = sum_{i <= k} (2 pi x_i - pi)                      (cumulative angles)
    d      = (sum_k cos a_k / (2 n) + 1/2,  sum_k sin a_k / (2 n) + 1/2)   in [0, 1]^2 (end effector)
    f      = -std(x)                                            (<= 0: prefer even angles)

as QDax's `qdax.tasks.arm.arm` (adaptive-intelligent-robotics/QDax 0.5.0, after hucebot's
fast_map-elites). Its QD-score offset is 1 (f >= -1/2 on [0, 1]).

`make_planar_arm_task(num_dofs)` wraps it as a `Task` for lfx.qd's recipes: genomes drawn uniformly
in [0, 1]^n, no reward areas, no images. Shapes: genomes [N, n] -> fitness [N], descriptor [N, 2].
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from lfx.qd.evaluator import Evaluation
from lfx.qd.task import Task


def arm(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(fitness [], descriptor [2]) of one genome x [n] (no batch axis)."""
    x = jnp.clip(x, 0.0, 1.0)
    n = x.shape[0]
    f = jnp.sqrt(jnp.mean(jnp.square(x - jnp.mean(x))))
    a = jnp.cumsum(2 * jnp.pi * x - jnp.pi)
    d = jnp.stack([jnp.sum(jnp.cos(a)) / (2 * n) + 0.5, jnp.sum(jnp.sin(a)) / (2 * n) + 0.5])
    return -f, d


@dataclasses.dataclass(frozen=True)
class UniformGenomes:
    """A genome initialiser in the shape of `lfx.qd.policy.MLPPolicy` (num_params, init)."""

    num_params: int

    def init(self, key: jax.Array, n: int) -> jax.Array:
        return jax.random.uniform(key, (n, self.num_params))


def evaluate(key: jax.Array, genomes: jax.Array) -> Evaluation:
    """The arm of every genome [N, n] in one vmapped call (the key is unused: deterministic)."""
    f, d = jax.vmap(arm)(genomes)
    n = genomes.shape[0]
    return Evaluation(fitness=f, descriptor=d, reward_area=jnp.full((n,), -1, jnp.int32),
                      image=jnp.zeros((n, 0, 0)))


def make_planar_arm_task(num_dofs: int = 8) -> Task:
    """The planar arm with `num_dofs` joints as a `Task` (descriptor box [0, 1]^2)."""
    if num_dofs <= 0:
        raise ValueError(f"num_dofs must be positive, got {num_dofs}.")
    return Task(name=f"planar_arm_{num_dofs}", env=None, env_params=None, policy=UniformGenomes(num_dofs),
                evaluate=evaluate, descriptor_low=(0.0, 0.0), descriptor_high=(1.0, 1.0), num_reward_areas=0,
                image_size=0)
