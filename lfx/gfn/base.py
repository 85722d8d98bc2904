"""The GFlowNet environment interface: a construction DAG with forward/backward action masks.

A GFlowNet environment is a directed acyclic graph over states `s` built from an initial state `s0`.
Every state is an integer vector `obj` (`[L]`, int32) plus a `done` flag. Forward actions are
`0 .. num_actions - 1`; the last one, `exit_action = num_actions - 1`, terminates the trajectory at
the current object `x` (the transition `x -> s_f`), whose reward is `R(x)`. Backward actions
`0 .. num_backward_actions - 1` undo one non-exit forward action. Every trajectory, exit included,
has at most `max_steps` forward actions, which fixes the static length of a rollout.

All methods act on ONE state (no batch axis); callers `jax.vmap`. The gymnax 1.0 methods
(`reset_env`, `step_env`, `get_obs`, `is_terminated`) make every GFlowNet environment usable as a
gymnax environment as well: the reward is `R(x)` on the exit step and 0 elsewhere.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class GFNState:
    """One state of a construction DAG.

    Attributes:
      time: number of forward actions taken (gymnax field).
      obj: [L] int32 object under construction.
      done: True once the exit action was taken (the state is then `s_f` reached from `obj`).
    """

    time: jax.Array
    obj: jax.Array
    done: jax.Array


class GFNEnv(environment.Environment):
    """Base class of lfx's GFlowNet environments (static shape settings live in the instance).

    Subclasses implement `initial_obj`, `forward_mask`, `backward_mask`, `apply_forward`,
    `apply_backward`, `backward_action`, `forward_action`, `log_reward`, `get_obs`,
    `terminal_objects` and the static sizes `obj_size`, `num_actions`, `num_backward_actions`,
    `max_steps`, `obs_size`.
    """

    obj_size: int = 0
    num_actions: int = 0  # plain attribute (gymnax declares a read-only property)
    num_backward_actions: int = 0
    max_steps: int = 0
    obs_size: int = 0

    @property
    def exit_action(self) -> int:
        return self.num_actions - 1

    # --- GFlowNet interface (one state, no batch axis) -------------------------------------------
    def initial_obj(self) -> jax.Array:
        raise NotImplementedError

    def init_state(self) -> GFNState:
        """The initial state `s0`."""
        return GFNState(
            time=jnp.zeros((), jnp.int32), obj=self.initial_obj(), done=jnp.zeros((), bool)
        )

    def forward_mask(self, state: GFNState, params: Any) -> jax.Array:
        """[num_actions] bool: which forward actions (exit last) are allowed at `state`."""
        raise NotImplementedError

    def backward_mask(self, state: GFNState, params: Any) -> jax.Array:
        """[num_backward_actions] bool: which parents `state` has (all False at `s0`)."""
        raise NotImplementedError

    def apply_forward(self, state: GFNState, action: jax.Array, params: Any) -> GFNState:
        """Child reached by a non-exit forward `action` (exit is handled by `step_forward`)."""
        raise NotImplementedError

    def apply_backward(self, state: GFNState, bwd_action: jax.Array, params: Any) -> GFNState:
        """Parent reached by backward action `bwd_action`."""
        raise NotImplementedError

    def backward_action(self, state: GFNState, action: jax.Array, params: Any) -> jax.Array:
        """Backward action, at the child of `state` under non-exit `action`, that returns here."""
        raise NotImplementedError

    def forward_action(self, state: GFNState, bwd_action: jax.Array, params: Any) -> jax.Array:
        """Forward action, at the parent `apply_backward(state, bwd_action)`, that leads here."""
        raise NotImplementedError

    def log_reward(self, state: GFNState, params: Any) -> jax.Array:
        """log R(obj) (a scalar; -inf where `obj` cannot terminate)."""
        raise NotImplementedError

    def terminal_objects(self) -> np.ndarray:
        """[N, L] int32: every object that can be terminated (for exact targets; small envs)."""
        raise NotImplementedError

    def terminal_index(self, obj: jax.Array) -> jax.Array:
        """Row of `obj` ([..., L]) in `terminal_objects()` (mixed-radix, lexicographic)."""
        raise NotImplementedError

    def mode_hits(self, obj: jax.Array, params: Any) -> jax.Array:
        """[..., M] bool: which of the environment's M modes each object `obj` ([..., L]) hits."""
        raise NotImplementedError

    def step_forward(self, state: GFNState, action: jax.Array, params: Any) -> GFNState:
        """Applies any forward action: exit marks the state done and keeps its object."""
        is_exit = action == self.exit_action
        child = self.apply_forward(state, jnp.where(is_exit, 0, action), params)
        obj = jnp.where(is_exit, state.obj, child.obj)
        return GFNState(time=state.time + 1, obj=obj, done=is_exit | state.done)

    # --- gymnax 1.0 interface --------------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: Any) -> tuple[jax.Array, GFNState]:
        del key
        state = self.init_state()
        return self.get_obs(state, params), state

    def step_env(self, key: jax.Array, state: GFNState, action: jax.Array, params: Any):
        del key
        new_state = self.step_forward(state, action, params)
        is_exit = action == self.exit_action
        reward = jnp.where(is_exit, jnp.exp(self.log_reward(state, params)), 0.0)
        return (
            jax.lax.stop_gradient(self.get_obs(new_state, params)),
            jax.lax.stop_gradient(new_state),
            reward,
            self.is_terminated(new_state, params),
            {},
        )

    def is_terminated(self, state: GFNState, params: Any) -> jax.Array:
        return state.done

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_actions)

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.obs_size,), jnp.float32)
