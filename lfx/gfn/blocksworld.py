"""BlocksWorld with exact transitions, as a GFlowNet environment for Flow of Reasoning.

Yu et al. 2024, "Flow of Reasoning" (arXiv:2406.05673) plans BlocksWorld problems (PlanBench
style: an initial configuration, a goal given as "x is on top of y" facts) with four verbs and a
step limit equal to the problem's optimal plan length (the 2-, 4- and 6-step splits). The LLM there
predicts the next state; here the transitions are exact.

State of one problem with N blocks: `on[i]` in {0..N-1 (block), N (table), N+1 (hand)}. Actions
(A = 2N + 2N^2 + 1, exit last; i != j, the diagonal of the pair blocks is always masked):

    i                    pick up i      i on table, clear, hand empty      -> i in hand
    N + i                put down i     i in hand                          -> i on table
    2N + i N + j         unstack i j    i on j, i clear, hand empty        -> i in hand
    2N + N^2 + i N + j   stack i j      i in hand, j clear (not in hand)   -> i on j

A trajectory ends (exit is then the only action) once every goal fact holds or the problem's step
limit is used up; before that, exit is masked. The object keeps the whole action history, so the
DAG is a tree and PB = 1 (one backward action: undo the last move).

Object layout ([2N + S + 2] int32, S = max_limit): on [N], goal [N] (-1 = no fact, else the block
or table it must be on), step limit, action history [S] (-1 = none), depth.

    R(x) = r(x) + step_reward * limit + failure_reward * 1[not solved],
    r(x) = success_reward (100) if every goal fact holds, else partial_reward (10) * facts met / facts,

with limit the problem's step limit. Defaults as FoR's public code (Yu-Fangxu/FoR,
BlocksWorld/lightning_module_selection.py): r(x) at lines 586-593 (`r1 = 100` if every goal fact
holds, else `10 * sum(meetings) / len(meetings)`), and the log reward `log(r1 + ll_weight *
ll_reward.sum())` at lines 181-191 and 218-227, where with the language-model term off (`ll_weight
== 0`) the code sets ll_reward = [1] * args.step and ll_weight = 1: the plan's step count args.step
is added to every reward (step_reward = 1, failure_reward = 0; R >= limit >= 1, so log R is finite).
With it on, ll_reward is a sum of -1/log-likelihood terms of a base LLM, which has no counterpart
here. FoR's plans always take exactly args.step actions (no early exit), so its step count is the
step limit; here a plan may end early on success and the term uses the limit, as the code does.
lfx's first version had no step term and a floor of 0.01 on failures: step_reward = 0,
failure_reward = 0.01 (`make_blocksworld(..., step_reward=0.0, failure_reward=0.01)`).
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from lfx.gfn.base import GFNEnv, GFNState


@struct.dataclass
class BlocksWorldParams:
    success_reward: float = 100.0
    partial_reward: float = 10.0
    failure_reward: float = 0.0  # FoR's code (lfx's first version: 1e-2)
    step_reward: float = 1.0  # x the step limit; FoR's code (lfx's first version: 0)
    max_steps_in_episode: int = 1 << 30


class BlocksWorld(GFNEnv):
    """All problems with `num_blocks` blocks and step limits up to `max_limit` (static sizes)."""

    def __init__(self, num_blocks: int = 4, max_limit: int = 6):
        if not 2 <= num_blocks <= 8:
            raise ValueError(f"num_blocks must be in 2..8; got {num_blocks}.")
        if max_limit < 1:
            raise ValueError(f"max_limit must be >= 1; got {max_limit}.")
        n = self.num_blocks = int(num_blocks)
        self.max_limit = int(max_limit)
        self.obj_size = 2 * n + self.max_limit + 2
        self.num_actions = 2 * n + 2 * n * n + 1
        self.num_backward_actions = 1
        self.max_steps = self.max_limit + 1
        self.obs_size = 2 * n * (n + 2) + 2 * n + 1 + (self.max_limit + 1) + 1

    @property
    def name(self) -> str:
        return f"BlocksWorld-{self.num_blocks}"

    @property
    def default_params(self) -> BlocksWorldParams:
        return BlocksWorldParams()

    # object views
    def _on(self, obj):
        return obj[: self.num_blocks]

    def _goal(self, obj):
        return obj[self.num_blocks : 2 * self.num_blocks]

    def _limit(self, obj):
        return obj[2 * self.num_blocks]

    def _hist(self, obj):
        return obj[2 * self.num_blocks + 1 : -1]

    def _depth(self, obj):
        return obj[-1]

    def initial_obj(self):
        n = self.num_blocks
        return jnp.asarray(problem_obj(np.full(n, n), np.full(n, -1), 1, self.max_limit))

    def goal_facts_met(self, obj):
        """(facts met, facts) of the goal at `obj`."""
        goal = self._goal(obj)
        has = goal >= 0
        return jnp.sum(has & (self._on(obj) == goal)), jnp.sum(has)

    def is_solved(self, obj):
        met, total = self.goal_facts_met(obj)
        return met == total

    def _action_table(self):
        """Static [A-1] arrays: verb (0..3), block i, block j (0 where unused)."""
        n = self.num_blocks
        verb = np.concatenate([np.zeros(n), np.ones(n), np.full(n * n, 2), np.full(n * n, 3)])
        bi = np.concatenate([np.arange(n), np.arange(n), np.repeat(np.arange(n), n), np.repeat(np.arange(n), n)])
        bj = np.concatenate([np.zeros(2 * n), np.tile(np.arange(n), 2 * n)])
        return verb.astype(np.int32), bi.astype(np.int32), bj.astype(np.int32)

    def forward_mask(self, state: GFNState, params) -> jax.Array:
        n = self.num_blocks
        on = self._on(state.obj)
        covered = jnp.zeros(n + 2, bool).at[on].set(True)[:n]  # some block sits on it
        held = on == n + 1
        clear = ~covered & ~held
        empty = ~jnp.any(held)
        pick = (on == n) & clear & empty
        put = held
        offdiag = ~np.eye(n, dtype=bool)
        unstack = (on[:, None] == jnp.arange(n)[None, :]) & clear[:, None] & empty & offdiag
        stack = held[:, None] & clear[None, :] & offdiag
        moves = jnp.concatenate([pick, put, unstack.reshape(-1), stack.reshape(-1)])
        done = self.is_solved(state.obj) | (self._depth(state.obj) >= self._limit(state.obj))
        return jnp.concatenate([moves & ~done, done[None]])

    def backward_mask(self, state: GFNState, params) -> jax.Array:
        return (self._depth(state.obj) > 0)[None]

    def _write(self, obj, block, where, hist, depth):
        n = self.num_blocks
        on = self._on(obj).at[block].set(where)
        return jnp.concatenate([on, obj[n : 2 * n + 1], hist, depth[None]]).astype(jnp.int32)

    def apply_forward(self, state, action, params):
        n = self.num_blocks
        verb, bi, bj = (jnp.asarray(a)[action] for a in self._action_table())
        where = jnp.stack([n + 1, n, n + 1, bj])[verb]
        d = self._depth(state.obj)
        hist = self._hist(state.obj).at[jnp.minimum(d, self.max_limit - 1)].set(action)
        return state.replace(obj=self._write(state.obj, bi, where, hist, d + 1), time=state.time + 1)

    def apply_backward(self, state, bwd_action, params):
        n = self.num_blocks
        d = self._depth(state.obj)
        last = jnp.maximum(d - 1, 0)
        action = self._hist(state.obj)[last]
        verb, bi, bj = (jnp.asarray(a)[jnp.maximum(action, 0)] for a in self._action_table())
        where = jnp.stack([n, n + 1, bj, n + 1])[verb]
        hist = self._hist(state.obj).at[last].set(-1)
        return state.replace(obj=self._write(state.obj, bi, where, hist, d - 1), time=state.time - 1)

    def backward_action(self, state, action, params):
        return jnp.zeros((), jnp.int32)

    def forward_action(self, state, bwd_action, params):
        return self._hist(state.obj)[jnp.maximum(self._depth(state.obj) - 1, 0)]

    def step_limit(self, obj):
        """The problem's step limit (FoR's args.step; its local search keeps limit // 2 moves)."""
        return self._limit(obj)

    def log_reward(self, state: GFNState, params: BlocksWorldParams) -> jax.Array:
        met, total = self.goal_facts_met(state.obj)
        frac = met / jnp.maximum(total, 1)
        r = jnp.where(met == total, params.success_reward,
                      params.partial_reward * frac + params.failure_reward)
        return jnp.log(r + params.step_reward * self._limit(state.obj))

    def get_obs(self, state: GFNState, params=None, key=None) -> jax.Array:
        n = self.num_blocks
        obj = state.obj
        on, goal = self._on(obj), self._goal(obj)
        covered = jnp.zeros(n + 2, bool).at[on].set(True)[:n]
        clear = (~covered & (on != n + 1)).astype(jnp.float32)
        sat = ((goal >= 0) & (on == goal)).astype(jnp.float32)
        left = jnp.clip(self._limit(obj) - self._depth(obj), 0, self.max_limit)
        return jnp.concatenate([
            jax.nn.one_hot(on, n + 2).reshape(-1),
            jax.nn.one_hot(jnp.where(goal < 0, n + 1, goal), n + 2).reshape(-1),  # "hand" slot = no fact
            clear, sat, jnp.all(on != n + 1)[None].astype(jnp.float32),
            jax.nn.one_hot(left, self.max_limit + 1), self.is_solved(obj)[None].astype(jnp.float32),
        ])

    def terminal_objects(self) -> np.ndarray:
        raise ValueError("BlocksWorld's plans are counted per problem with count_solutions.")


def problem_obj(on, goal, limit: int, max_limit: int) -> np.ndarray:
    """[2N + max_limit + 2] int32 start object of one problem (a batch of these is `init_obj`)."""
    if not 1 <= limit <= max_limit:
        raise ValueError(f"step limit {limit} must be in 1..max_limit={max_limit}.")
    return np.concatenate([on, goal, [limit], np.full(max_limit, -1), [0]]).astype(np.int32)


# ---- NumPy/Python reference: predicates over sets, used by the generator and as the tests' oracle ----

def ref_moves(on: tuple) -> list[tuple[int, tuple]]:
    """Every legal (action id, next `on`) from `on` (tuple, hand = N + 1), by PDDL preconditions."""
    n = len(on)
    holding = [i for i in range(n) if on[i] == n + 1]
    under = {on[i] for i in range(n)}
    clear = [i for i in range(n) if i not in under and on[i] != n + 1]
    out = []
    for i in clear:
        if not holding and on[i] == n:
            out.append((i, on[:i] + (n + 1,) + on[i + 1:]))
        if not holding and on[i] < n:
            out.append((2 * n + i * n + on[i], on[:i] + (n + 1,) + on[i + 1:]))
    for h in holding:
        out.append((n + h, on[:h] + (n,) + on[h + 1:]))
        for j in clear:
            if j != h:
                out.append((2 * n + n * n + h * n + j, on[:h] + (j,) + on[h + 1:]))
    return out


def ref_solved(on: tuple, goal: tuple) -> bool:
    return all(g < 0 or o == g for o, g in zip(on, goal))


def all_configurations(n: int) -> list[tuple]:
    """Every hand-empty configuration of n blocks (towers on the table), as `on` tuples."""
    out = []
    for on in itertools.product(range(n + 1), repeat=n):
        if any(on[i] == i for i in range(n)):
            continue
        tops = [b for b in on if b < n]
        if len(tops) != len(set(tops)):
            continue
        ok = True
        for i in range(n):  # every chain reaches the table within n hops (no cycle)
            b, hops = i, 0
            while b < n and hops <= n:
                b, hops = on[b], hops + 1
            ok &= b == n
        if ok:
            out.append(tuple(on))
    return out


def optimal_length(init: tuple, goal: tuple, max_depth: int = 64) -> int:
    """Length of a shortest plan from `init` to any state meeting `goal` (BFS); -1 if none."""
    frontier, seen = [tuple(init)], {tuple(init)}
    for d in range(max_depth + 1):
        if any(ref_solved(s, goal) for s in frontier):
            return d
        nxt = []
        for s in frontier:
            for _, t in ref_moves(s):
                if t not in seen:
                    seen.add(t)
                    nxt.append(t)
        frontier = nxt
    return -1


def count_solutions(init: tuple, goal: tuple, limit: int) -> int:
    """Number of action sequences of length <= limit that first meet `goal` at their last step
    (exactly the env's correct trajectories for this problem and step limit)."""
    paths = {tuple(init): 1}
    total = 0
    for _ in range(limit + 1):
        nxt = defaultdict(int)
        for s, c in paths.items():
            if ref_solved(s, goal):
                total += c
                continue
            for _, t in ref_moves(s):
                nxt[t] += c
        paths = nxt
    return total


def make_problems(seed: int, num_blocks: int, plan_length: int, n: int, exclude=()) -> list[dict]:
    """n distinct problems whose optimal plan has exactly `plan_length` steps (a paper-style split).

    Initial and goal configurations are drawn uniformly from `all_configurations`; the goal keeps the
    goal configuration's block-on-block facts (PlanBench style, table facts dropped). Each problem:
    {"init": tuple, "goal": tuple, "length": int, "num_solutions": int (at that step limit)}.
    """
    if plan_length < 1 or plan_length % 2:
        raise ValueError(f"plan_length must be a positive even number (plans alternate pick/place); "
                         f"got {plan_length}.")
    rng = np.random.default_rng(seed)
    configs = all_configurations(num_blocks)
    seen = {(tuple(p["init"]), tuple(p["goal"])) for p in exclude}
    out, tries = [], 0
    while len(out) < n:
        tries += 1
        if tries > 200_000:
            raise ValueError(f"found only {len(out)} problems of length {plan_length} with "
                             f"{num_blocks} blocks; lower n or change plan_length.")
        init = configs[rng.integers(len(configs))]
        target = configs[rng.integers(len(configs))]
        goal = tuple(t if t < num_blocks else -1 for t in target)
        if all(g < 0 for g in goal) or (init, goal) in seen:
            continue
        if optimal_length(init, goal, plan_length) != plan_length:
            continue
        seen.add((init, goal))
        out.append({"init": init, "goal": goal, "length": plan_length,
                    "num_solutions": count_solutions(init, goal, plan_length)})
    return out


def problems_to_objs(problems: list[dict], max_limit: int, slack: int = 0) -> np.ndarray:
    """[P, L] start objects, step limit = optimal length + slack."""
    return np.stack([problem_obj(p["init"], p["goal"], p["length"] + slack, max_limit) for p in problems])


def make_blocksworld(num_blocks=4, max_limit=6, **params):
    """Registry factory: `(env, env_params)`; keywords as `BlocksWorldParams`. Refuses rewards that
    make some log R = -inf (a failure with no fact met needs failure_reward > 0 or step_reward > 0)."""
    env = BlocksWorld(num_blocks, max_limit)
    ep = env.default_params.replace(**params)
    check_rewards(ep)
    return env, ep


def check_rewards(ep) -> None:
    """ValueError, saying what to change, for BlocksWorld rewards with a zero or negative R."""
    for name in ("success_reward", "partial_reward", "failure_reward", "step_reward"):
        if float(getattr(ep, name)) < 0:
            raise ValueError(f"BlocksWorld {name} must be >= 0; got {getattr(ep, name)}.")
    if not float(ep.success_reward) > 0:
        raise ValueError(f"BlocksWorld success_reward must be > 0; got {ep.success_reward}.")
    if not (float(ep.failure_reward) > 0 or float(ep.step_reward) > 0):
        raise ValueError("BlocksWorld needs failure_reward > 0 or step_reward > 0: a failed plan with no "
                         "goal fact met would have R = 0 (log R = -inf).")
