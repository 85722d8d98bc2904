"""How sparse is a task? Where random policies (lfx's MLP initialiser) end, per reward area.

With p the fraction of random policies that end in an area, random search with a budget of B
evaluations misses it with probability (1 - p)^B.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from lfx.qd.task import Task


@dataclasses.dataclass(frozen=True)
class ReachConfig:
    """env, env_kwargs, hidden: the task; num random policies in batches of `batch` per vmapped
    call; seed; budget: B of the miss probability (1 - p)^B."""

    env: str = "Curling-sparse"
    env_kwargs: tuple = ()
    hidden: tuple[int, ...] = (5, 5, 5)
    num: int = 20_000
    batch: int = 2_000
    seed: int = 0
    budget: int = 10_000

    def validate(self) -> None:
        for name in ("num", "batch", "budget"):
            if getattr(self, name) <= 0:
                raise ValueError(f"config.{name} must be positive, got {getattr(self, name)}.")
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise ValueError(f"config.hidden must be positive layer sizes, got {self.hidden}.")


def random_reach(task: Task, config: ReachConfig) -> dict:
    """Rolls out `config.num` initialiser genomes; returns counts / fractions per reward area."""
    evaluate = jax.jit(task.evaluate)
    areas, descs = [], []
    for i in range(-(-config.num // config.batch)):
        k = jax.random.fold_in(jax.random.key(config.seed), i)
        ev = evaluate(k, task.init_genomes(jax.random.fold_in(k, 1), config.batch))
        areas.append(np.asarray(ev.reward_area))
        descs.append(np.asarray(ev.descriptor))
    area = np.concatenate(areas)[: config.num]
    desc = np.concatenate(descs)[: config.num]
    _, s0 = task.env.reset_env(jax.random.key(0), task.env_params)
    start = np.asarray(task.env.descriptor(s0, task.env_params))
    moved = np.linalg.norm(desc - start, axis=1) > 1e-3
    rows = []
    for a in range(task.num_reward_areas):
        n = int((area == a).sum())
        p = n / len(area)
        rows.append({"area": a, "count": n, "fraction": p,
                     "miss_probability": float((1 - p) ** config.budget)})
    return {"env": config.env, "hidden": list(config.hidden), "genome_dim": task.genome_dim,
            "num": int(len(area)), "moved": float(moved.mean()), "budget": config.budget,
            "areas": rows}
