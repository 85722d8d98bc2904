"""LPG's grid worlds: tabular (fixed objects, one-hot position) and random (objects observed).

An agent moves on a walled grid with 9 actions (stay, 4 compass, 4 diagonal; a move into a wall
leaves it in place). Objects of several kinds sit on cells; stepping onto a present object gives its
reward and removes it. Then, for every absent object, the episode terminates with probability
ε_term of that object, otherwise the object reappears with probability ε_respawn (at its own fixed
cell). Episodes are truncated at `max_steps_in_episode`.

Configurations (walls, object kinds (count, reward, ε_term, ε_respawn), episode length) follow the
LPG paper's grid worlds (Oh et al. 2020, "Discovering Reinforcement Learning Algorithms",
arXiv:2007.08794, Appendix; values as in the public `groove` re-implementation): dense, sparse,
long_horizon, longer_horizon, long_dense, and the random-world layouts small, small_sparse,
very_dense.

* Tabular: object cells are fixed per level (drawn from `level_seed`); the observation is the one-hot
  agent cell [H·W] (so a linear network is a table).
* Random: a level (object cells) is drawn from a key with `random_level`, so a batch of levels is a
  vmap over params; the observation is [1 + number of kinds, H, W] flattened (agent and one
  presence map per kind), as LPG's random grid worlds observe object positions.

Walls are given by ASCII art ('#' wall). Every piece of state is a fixed-shape array so reset/step
jit and vmap.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

# (dy, dx) for NONE, N, E, S, W, SW, SE, NE, NW.
MOVES = jnp.array(
    [[0, 0], [-1, 0], [0, 1], [1, 0], [0, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], jnp.int32
)


@dataclasses.dataclass(frozen=True)
class GridLayout:
    """Static layout: ASCII walls and object kinds (count, reward, eps_term, eps_respawn)."""

    art: tuple[str, ...]
    kinds: tuple[tuple[int, float, float, float], ...]
    max_steps: int


def _box(h: int, w: int) -> tuple[str, ...]:
    return ("#" * w,) + tuple("#" + " " * (w - 2) + "#" for _ in range(h - 2)) + ("#" * w,)


LAYOUTS: dict[str, GridLayout] = {
    "dense": GridLayout(_box(13, 13), ((2, 1.0, 0.0, 0.05), (1, -1.0, 0.5, 0.1), (1, -1.0, 0.0, 0.5)), 500),
    "sparse": GridLayout(_box(15, 15), ((1, 1.0, 1.0, 0.0), (1, -1.0, 1.0, 0.0)), 50),
    "long_horizon": GridLayout(_box(13, 13), ((2, 1.0, 0.0, 0.01), (2, -1.0, 0.5, 1.0)), 1000),
    "longer_horizon": GridLayout(
        (
            "###########",
            "#    #    #",
            "#         #",
            "#    #    #",
            "#   ###   #",
            "#    #    #",
            "#         #",
            "#    #    #",
            "###########",
        ),
        ((2, 1.0, 0.1, 0.01), (5, -1.0, 0.8, 1.0)),
        2000,
    ),
    "long_dense": GridLayout(
        (
            "#############",
            "#           #",
            "#     #     #",
            "#     #     #",
            "#     #     #",
            "### ##### ###",
            "#     #     #",
            "#     #     #",
            "#           #",
            "#     #     #",
            "#     #     #",
            "#     #     #",
            "#############",
        ),
        ((4, 1.0, 0.0, 0.005),),
        2000,
    ),
    "small": GridLayout(
        ("#########", "#       #", "#  #    #", "#       #", "#    #  #", "#       #", "#########"),
        ((2, 1.0, 0.0, 0.05), (2, -1.0, 0.5, 0.1)),
        500,
    ),
    "small_sparse": GridLayout(_box(7, 9), ((1, 1.0, 1.0, 1.0), (2, -1.0, 1.0, 1.0)), 50),
    "very_dense": GridLayout(_box(13, 13), ((1, 1.0, 0.0, 1.0),), 2000),
}


@struct.dataclass
class EnvParams:
    walls: jax.Array  # [H, W] bool
    object_pos: jax.Array  # [K, 2] int32, fixed cell of every object
    object_kind: jax.Array  # [K] int32
    object_reward: jax.Array  # [K]
    object_eps_term: jax.Array  # [K]
    object_eps_respawn: jax.Array  # [K]
    max_steps_in_episode: int = 500


@struct.dataclass
class EnvState(environment.EnvState):
    pos: jax.Array  # [2] int32
    present: jax.Array  # [K] bool
    time: int


def _objects(layout: GridLayout):
    kind, rew, term, resp = [], [], [], []
    for k, (n, r, et, er) in enumerate(layout.kinds):
        kind += [k] * n
        rew += [r] * n
        term += [et] * n
        resp += [er] * n
    return (
        jnp.array(kind, jnp.int32),
        jnp.array(rew, jnp.float32),
        jnp.array(term, jnp.float32),
        jnp.array(resp, jnp.float32),
    )


def _walls(layout: GridLayout) -> jax.Array:
    return jnp.array([[c == "#" for c in row] for row in layout.art], bool)


def random_level(key: jax.Array, layout: GridLayout) -> EnvParams:
    """A level of `layout` with every object on a distinct random free cell (traceable, vmappable)."""
    walls = _walls(layout)
    kind, rew, term, resp = _objects(layout)
    h, w = walls.shape
    free = (~walls).ravel()
    # Distinct cells: the K free cells with the largest random scores.
    scores = jnp.where(free, jax.random.uniform(key, (h * w,)), -1.0)
    cells = jnp.argsort(-scores)[: kind.shape[0]]
    pos = jnp.stack([cells // w, cells % w], -1).astype(jnp.int32)
    return EnvParams(walls, pos, kind, rew, term, resp, layout.max_steps)


class GridWorld(environment.Environment):
    """LPG grid world (tabular or random observation, see module docstring)."""

    def __init__(self, layout: GridLayout, tabular: bool = True, level_seed: int = 0):
        super().__init__()
        self.layout = layout
        self.tabular = tabular
        self.level_seed = level_seed
        self.shape = (len(layout.art), len(layout.art[0]))
        self.num_kinds = len(layout.kinds)

    @property
    def default_params(self) -> EnvParams:
        return random_level(jax.random.key(self.level_seed), self.layout)

    @property
    def name(self) -> str:
        return "LPG-GridWorld"

    @property
    def num_actions(self) -> int:
        return 9

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(9)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        h, w = self.shape
        n = h * w if self.tabular else (1 + self.num_kinds) * h * w
        return spaces.Box(0.0, 1.0, (n,), jnp.float32)

    def get_obs(self, state: EnvState, params: EnvParams, key: Any = None) -> jax.Array:
        h, w = self.shape
        agent = jnp.zeros((h, w)).at[state.pos[0], state.pos[1]].set(1.0)
        if self.tabular:
            return agent.ravel()
        maps = jnp.zeros((self.num_kinds, h, w)).at[
            params.object_kind, params.object_pos[:, 0], params.object_pos[:, 1]
        ].add(state.present.astype(jnp.float32))
        return jnp.concatenate([agent[None], jnp.minimum(maps, 1.0)], 0).ravel()

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        h, w = self.shape
        occupied = jnp.zeros((h, w), bool).at[params.object_pos[:, 0], params.object_pos[:, 1]].set(True)
        free = (~params.walls & ~occupied).ravel()
        cell = jax.random.categorical(key, jnp.where(free, 0.0, -jnp.inf))
        pos = jnp.array([cell // w, cell % w], jnp.int32)
        state = EnvState(pos=pos, present=jnp.ones(params.object_kind.shape, bool), time=0)
        return self.get_obs(state, params), state

    def step_env(self, key, state: EnvState, action, params: EnvParams):
        h, w = self.shape
        new = jnp.clip(state.pos + MOVES[action], 0, jnp.array([h - 1, w - 1]))
        new = jnp.where(params.walls[new[0], new[1]], state.pos, new)
        here = jnp.all(params.object_pos == new, axis=-1) & state.present
        reward = jnp.sum(jnp.where(here, params.object_reward, 0.0))
        present = state.present & ~here
        k_term, k_resp = jax.random.split(key)
        u_term = jax.random.uniform(k_term, present.shape)
        u_resp = jax.random.uniform(k_resp, present.shape)
        terminate = jnp.any(~present & (u_term < params.object_eps_term))
        present = present | (u_resp < params.object_eps_respawn)
        state = EnvState(pos=new, present=present, time=state.time + 1)
        # Truncation at max_steps_in_episode is the base class's `is_truncated`.
        return self.get_obs(state, params), state, reward, terminate, {}


def make_tabular(layout: str = "dense", level_seed: int = 0, **overrides):
    """Registry factory: a tabular LPG grid world, e.g. make("LPG-Tabular-Dense")."""
    env = GridWorld(LAYOUTS[layout], tabular=True, level_seed=level_seed)
    params = env.default_params
    return env, params.replace(**overrides) if overrides else params


def make_random(layout: str = "small", level_seed: int = 0, **overrides):
    """Registry factory: a random LPG grid world; vmap `random_level` over keys for new levels."""
    env = GridWorld(LAYOUTS[layout], tabular=False, level_seed=level_seed)
    params = env.default_params
    return env, params.replace(**overrides) if overrides else params


def _factory(kind: str, layout: str):
    def factory(**kwargs):
        fn = make_tabular if kind == "tabular" else make_random
        return fn(layout=layout, **kwargs)

    return factory


make_tabular_dense = _factory("tabular", "dense")
make_tabular_sparse = _factory("tabular", "sparse")
make_tabular_long_horizon = _factory("tabular", "long_horizon")
make_tabular_longer_horizon = _factory("tabular", "longer_horizon")
make_tabular_long_dense = _factory("tabular", "long_dense")
make_random_dense = _factory("random", "dense")
make_random_small = _factory("random", "small")
make_random_small_sparse = _factory("random", "small_sparse")
make_random_very_dense = _factory("random", "very_dense")
