"""A tiny recipe in the shared shape (noisy relaxation x <- x - lr (x - 1) + noise), for spine tests."""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class HParams:
    lr: float = 0.1
    noise: float = 0.01


class Recipe(NamedTuple):
    num_updates: int
    init: Callable[..., Any]
    run: Callable[..., Any]


def init(key, hp):
    del hp
    return {"x": jnp.zeros(3), "key": key, "t": jnp.int32(0)}


def run(state, hp, *, num_updates):
    def body(s, _):
        key, sub = jax.random.split(s["key"])
        x = s["x"] - hp.lr * (s["x"] - 1.0) + hp.noise * jax.random.normal(sub, (3,))
        loss = jnp.sum((x - 1.0) ** 2)
        return {"x": x, "key": key, "t": s["t"] + 1}, {
            "train/lr": hp.lr, "train/loss": loss, "train/t": s["t"] + 1,
        }

    return jax.lax.scan(body, state, None, num_updates)


RECIPE = Recipe(num_updates=12, init=init, run=run)
