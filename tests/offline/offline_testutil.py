"""Shared pieces of the lfx.offline tests: the scripted Pendulum policies of `lfx.offline.scripted`."""

from lfx.offline.scripted import (  # noqa: F401  (re-exported for the tests)
    mixed_controller,
    noisy_controller,
    pendulum_controller,
    pendulum_rollouts,
    uniform_random,
)
