"""The shared update loop: `finished_episodes` bookkeeping, and `run_updates` / `train_run` with
and without a recipe's extra run arguments (PPO's objective parameters)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from lfx.rl import loop


def test_finished_episodes_mean_of_those_that_ended_else_the_last():
    ret = jnp.array([[0.0, 10.0], [0.0, 0.0], [30.0, 0.0]])  # [T, N]: two episodes ended
    done = ret != 0
    last, n = loop.finished_episodes(ret, done, jnp.float32(-1.0))
    assert int(n) == 2 and float(last) == pytest.approx(20.0)
    last, n = loop.finished_episodes(jnp.zeros((3, 2)), jnp.zeros((3, 2), bool), jnp.float32(-1.0))
    assert int(n) == 0 and float(last) == -1.0


@struct.dataclass
class _HP:
    step: float = 1.0

    def validate(self):
        if not self.step > 0:
            raise ValueError("step must be positive")


@pytest.mark.parametrize("extra", [(), (jnp.float32(10.0),)])
def test_train_run_is_init_then_a_scan_of_updates_passing_extra_args(extra):
    def init(key, hp, *args):
        return jnp.float32(0.0) + sum(args, 0.0)

    def update(s, hp, *args):
        s = s + hp.step
        return s, {"x": s}

    run = lambda s, hp, *a, num_updates: loop.run_updates(s, hp, *a, num_updates=num_updates, update=update)  # noqa: E731
    state, m = loop.train_run(None, _HP(2.0), *extra, init=init, run=run, num_updates=3)
    base = float(extra[0]) if extra else 0.0
    np.testing.assert_allclose(m["x"], base + np.array([2.0, 4.0, 6.0]))
    assert float(state) == base + 6.0
    with pytest.raises(ValueError, match="positive"):
        loop.train_run(None, _HP(-1.0), *extra, init=init, run=run, num_updates=3)
