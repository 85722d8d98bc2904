"""Game of 24 as a GFlowNet environment (exact rational arithmetic), for Flow of Reasoning.

Yu et al. 2024, "Flow of Reasoning: Training LLMs for Divergent Problem Solving with Minimal
Examples" (arXiv:2406.05673) trains a policy with trajectory balance to combine four numbers with
+ - x / into 24. Here the state is symbolic: a step picks an unordered pair of the remaining numbers
(slots i < j) and one of six operations

    0: a + b   1: a * b   2: a - b   3: b - a   4: a / b   5: b / a      (a = slot i, b = slot j)

writes the result into slot i and empties slot j; after three steps one number is left and the
only action is exit. That gives 36 * 18 * 6 = 3,888 operation sequences per puzzle (fewer where a
division by zero is masked). Numbers are exact fractions (numerator, denominator > 0, reduced).

The DAG is a tree (the state keeps its whole history), so PB = 1: a single backward action undoes
the last step. Object layout ([36] int32): 4 levels x 4 slots x (num, den) (den 0 = empty slot),
then the 3 actions taken, then the depth.

    log R(x) = log(success_reward) if the last number is 24, else log(failure_reward),
    success_reward = 100, failure_reward = 0.001

as FoR's public code (Yu-Fangxu/FoR, Game24/lightning_module.py lines 213-216: `reward = 100` if the
last number is 24 `else: reward = 0.001`; every reward in Game24/data/train.json is 100 or 0.001).
That code's log reward is log(reward + ll_reward), ll_reward = exp(-NLL of the steps under the base
LLM)^(1/0.7) in (0, 1] (lightning_module.py lines 59-65, 263-264): a language-model prior that has no
counterpart without an LLM and is left out here. lfx's first version used failure_reward = 0.01
(`make_game24(..., failure_reward=0.01)`, `--config.failure_reward=0.01` in the experiment).
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from lfx.gfn.base import GFNEnv, GFNState

PAIRS = np.asarray([(i, j) for i in range(4) for j in range(i + 1, 4)], np.int32)  # [6, 2]
NUM_OPS = 6


@struct.dataclass
class Game24Params:
    success_reward: float = 100.0
    failure_reward: float = 1e-3  # FoR's code (lfx's first version: 1e-2)
    max_steps_in_episode: int = 1 << 30


def _reduce(n, d):
    g = jnp.maximum(jnp.gcd(n, d), 1)
    s = jnp.where(d < 0, -1, 1)
    return s * n // g, s * d // g


def apply_op(op, a, b):
    """Exact a op b for fractions a = (n, d), b = (n, d); returns (num, den, valid)."""
    an, ad = a
    bn, bd = b
    cands = jnp.stack([
        jnp.stack([an * bd + bn * ad, ad * bd]),
        jnp.stack([an * bn, ad * bd]),
        jnp.stack([an * bd - bn * ad, ad * bd]),
        jnp.stack([bn * ad - an * bd, ad * bd]),
        jnp.stack([an * bd, ad * bn]),
        jnp.stack([bn * ad, bd * an]),
    ])
    n, d = cands[op]
    valid = d != 0
    n, d = _reduce(n, jnp.where(valid, d, 1))
    return n, d, valid


class Game24(GFNEnv):
    """One puzzle (four numbers, static)."""

    def __init__(self, numbers=(4, 7, 8, 8)):
        if len(numbers) != 4:
            raise ValueError(f"Game24 needs four numbers; got {numbers}.")
        self.numbers = tuple(int(x) for x in numbers)
        self.obj_size = 4 * 4 * 2 + 3 + 1
        self.num_actions = len(PAIRS) * NUM_OPS + 1
        self.num_backward_actions = 1
        self.max_steps = 4
        self.obs_size = 8 + 4 + 4 + 4 + 4 * 14

    @property
    def name(self) -> str:
        return "Game24-" + "-".join(map(str, self.numbers))

    @property
    def default_params(self) -> Game24Params:
        return Game24Params()

    # object views
    def _levels(self, obj):
        return obj[:32].reshape(4, 4, 2)

    def _depth(self, obj):
        return obj[35]

    def initial_obj(self):
        return jnp.asarray(puzzle_obj(self.numbers))

    def current(self, obj):
        """[4, 2] numbers at the current depth (den 0 = empty)."""
        return self._levels(obj)[self._depth(obj)]

    def forward_mask(self, state: GFNState, params) -> jax.Array:
        cur = self.current(state.obj)
        filled = cur[:, 1] != 0
        pair_ok = filled[PAIRS[:, 0]] & filled[PAIRS[:, 1]]
        a = cur[PAIRS[:, 0]]
        b = cur[PAIRS[:, 1]]
        div_ok = jnp.stack([jnp.ones(6, bool), jnp.ones(6, bool), jnp.ones(6, bool), jnp.ones(6, bool),
                            b[:, 0] != 0, a[:, 0] != 0], axis=1)  # [6 pairs, 6 ops]
        m = (pair_ok[:, None] & div_ok).reshape(-1)
        return jnp.concatenate([m, (filled.sum() == 1)[None]])

    def backward_mask(self, state: GFNState, params) -> jax.Array:
        return (self._depth(state.obj) > 0)[None]

    def apply_forward(self, state, action, params):
        obj = state.obj
        d = self._depth(obj)
        pair, op = action // NUM_OPS, action % NUM_OPS
        i, j = jnp.asarray(PAIRS)[pair, 0], jnp.asarray(PAIRS)[pair, 1]
        cur = self.current(obj)
        n, den, _ = apply_op(op, (cur[i, 0], cur[i, 1]), (cur[j, 0], cur[j, 1]))
        nxt = cur.at[i].set(jnp.stack([n, den])).at[j].set(0)
        lv = self._levels(obj).at[jnp.minimum(d + 1, 3)].set(nxt)
        acts = obj[32:35].at[jnp.minimum(d, 2)].set(action)
        new = jnp.concatenate([lv.reshape(-1), acts, (d + 1)[None]]).astype(jnp.int32)
        return state.replace(obj=new, time=state.time + 1)

    def apply_backward(self, state, bwd_action, params):
        obj = state.obj
        d = self._depth(obj)
        lv = self._levels(obj).at[d].set(0)
        acts = obj[32:35].at[jnp.maximum(d - 1, 0)].set(-1)
        new = jnp.concatenate([lv.reshape(-1), acts, (d - 1)[None]]).astype(jnp.int32)
        return state.replace(obj=new, time=state.time - 1)

    def backward_action(self, state, action, params):
        return jnp.zeros((), jnp.int32)

    def forward_action(self, state, bwd_action, params):
        return state.obj[32 + jnp.maximum(self._depth(state.obj) - 1, 0)]

    def final_value(self, obj):
        """(num, den) of the remaining number (meaningful at depth 3)."""
        cur = self.current(obj)
        k = jnp.argmax(cur[:, 1] != 0)
        return cur[k, 0], cur[k, 1]

    def is_solved(self, obj):
        n, d = self.final_value(obj)
        return (self._depth(obj) == 3) & (n == 24) & (d == 1)

    def log_reward(self, state: GFNState, params: Game24Params) -> jax.Array:
        return jnp.where(self.is_solved(state.obj), jnp.log(params.success_reward),
                         jnp.log(params.failure_reward))

    def get_obs(self, state: GFNState, params=None, key=None) -> jax.Array:
        obj = state.obj
        cur = self.current(obj).astype(jnp.float32)
        filled = (cur[:, 1] != 0).astype(jnp.float32)
        val = jnp.where(filled > 0, cur[:, 0] / jnp.where(filled > 0, cur[:, 1], 1.0), 0.0)
        feats = jnp.stack([val / 24.0, filled], 1).reshape(-1)
        onehot = jax.nn.one_hot(self._levels(obj)[0, :, 0], 14).reshape(-1)  # the puzzle itself
        depth = jax.nn.one_hot(self._depth(obj), 4)
        integer = (cur[:, 1] == 1).astype(jnp.float32) * filled
        near = jnp.exp(-jnp.abs(val - 24.0)) * filled
        return jnp.concatenate([feats, near, integer, depth, onehot])

    def terminal_objects(self) -> np.ndarray:
        raise ValueError("Game24's terminal objects are enumerated with lfx.gfn.exact.enumerate_states.")


def puzzle_obj(numbers) -> np.ndarray:
    """[36] int32 start object of a puzzle (pass a batch of these as `init_obj` to a rollout:
    the observation carries the puzzle, so one policy serves many puzzles)."""
    lv = np.zeros((4, 4, 2), np.int32)
    lv[0, :, 0] = numbers
    lv[0, :, 1] = 1
    return np.concatenate([lv.reshape(-1), [-1, -1, -1, 0]]).astype(np.int32)


def solvable(numbers) -> bool:
    """Whether 24 can be reached (recursive search over Fractions)."""

    def rec(vals):
        if len(vals) == 1:
            return vals[0] == 24
        for i in range(len(vals)):
            for j in range(i + 1, len(vals)):
                a, b = vals[i], vals[j]
                rest = [v for k, v in enumerate(vals) if k not in (i, j)]
                outs = [a + b, a * b, a - b, b - a] + ([a / b] if b else []) + ([b / a] if a else [])
                if any(rec(rest + [o]) for o in outs):
                    return True
        return False

    return rec([Fraction(x) for x in numbers])


def solutions_bruteforce(numbers) -> list[tuple[int, int, int]]:
    """Every action sequence (a1, a2, a3) of `Game24(numbers)` that reaches 24, by Python Fractions."""
    out = []

    def step(vals, action):
        pair, op = divmod(action, NUM_OPS)
        i, j = PAIRS[pair]
        if vals[i] is None or vals[j] is None:
            return None
        a, b = vals[i], vals[j]
        if (op == 4 and b == 0) or (op == 5 and a == 0):
            return None
        r = [a + b, a * b, a - b, b - a, a / b if op == 4 else 0, b / a if op == 5 else 0][op]
        v = list(vals)
        v[i], v[j] = r, None
        return v

    start = [Fraction(x) for x in numbers]
    for seq in itertools.product(range(len(PAIRS) * NUM_OPS), repeat=3):
        v = start
        for a in seq:
            v = step(v, a)
            if v is None:
                break
        if v is not None and [x for x in v if x is not None] == [Fraction(24)]:
            out.append(seq)
    return out


def make_game24(numbers=(4, 7, 8, 8), **params):
    """Registry factory: `(env, env_params)`; keywords `success_reward`, `failure_reward` (both > 0)."""
    env = Game24(numbers)
    ep = env.default_params.replace(**params)
    for name in ("success_reward", "failure_reward"):
        if not float(getattr(ep, name)) > 0:
            raise ValueError(f"Game24 {name} must be > 0 (log R must be finite); got {getattr(ep, name)}.")
    return env, ep
