"""Ant maze: brax's quadruped `ant` in a walled U-maze, rewarded only when it ends in the goal.

After the AntMaze task of SERENE (Paolo et al., arXiv:2102.03140; their MuJoCo maze is 70 x 70 m with
3000-step episodes). This is a much smaller maze sized for CPU budgets, built from brax's own ant
model (`brax/envs/assets/ant.xml`, unchanged except that the torso now collides too) with box walls
added to its MJCF world and simulated by a brax pipeline (default `spring`: it compiled in 24 s and
ran 3x faster than `positional` on our CPU; timestep 0.005 s, 10 substeps per control step and motor
gear 200, as brax's `Ant` sets for that backend).

* Arena [-3, 3]^2 (outer walls), one inner wall along y = 0 from x = -3 to x = 1: a U; walls are
  0.1 m thick and 4 m high (with 1 m walls flailing ants got the torso up to 1.8 m). The ant
  starts at (-1.5, -1.5) (bottom arm of the U), the goal is a disc of radius 0.75 at (-1.5, 1.5)
  (top arm), so the straight line is blocked and the ant must walk round the wall's free end.
* Actions: 8 motor commands in [-1, 1]. Observation: the ant's generalised positions and velocities
  (q [15], including the torso's x, y, and qd [14]): 29 inputs, as the paper's controller.
* Episode: `max_steps_in_episode` control steps of 0.05 s, no termination. At the last step the
  reward is (R - d) / R inside the goal (d: torso's distance to its centre), else 0. Descriptor: the
  torso's final (x, y), grid [-3, 3]^2.

Rollouts of flailing random or evolved policies are chaotic: the same genome evaluated alone and
inside a vmapped batch was seen to end in different places (float differences grow), so a single
evaluation is a noisy sample of a policy's outcome.

brax is an optional extra: building the env without it raises an ImportError saying how to install it.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces

from lfx.envs.sparse.base import blob_image, goal_reward, make_with_overrides

HALF_SIZE = 3.0
# (centre x, centre y, half-length x, half-length y) of each wall, 0.1 m thick and WALL_HEIGHT high:
# with 1 m walls, flailing spring-backend ants got the torso up to z = 1.8 m (experiments/qd_ant_probe.py).
WALL_HEIGHT = 4.0
WALLS = (
    (0.0, HALF_SIZE, HALF_SIZE, 0.05),
    (0.0, -HALF_SIZE, HALF_SIZE, 0.05),
    (HALF_SIZE, 0.0, 0.05, HALF_SIZE),
    (-HALF_SIZE, 0.0, 0.05, HALF_SIZE),
    (-1.0, 0.0, 2.0, 0.05),  # the U's inner wall, from x = -3 to x = 1
)
START = (-1.5, -1.5)


def maze_xml(walls=WALLS, start=START) -> str:
    """brax's ant MJCF with the walls added to the world and the torso made to collide."""
    from etils import epath

    xml = (epath.resource_path("brax") / "envs/assets/ant.xml").read_text()
    boxes = "".join(
        f'<geom name="wall{i}" type="box" pos="{x} {y} {WALL_HEIGHT / 2}" size="{hx} {hy} {WALL_HEIGHT / 2}" '
        f'contype="0" conaffinity="1" rgba="0.7 0.7 0.7 1"/>'
        for i, (x, y, hx, hy) in enumerate(walls)
    )
    xml = xml.replace('<body name="torso" pos="0 0 0.75">',
                      f'{boxes}<body name="torso" pos="{start[0]} {start[1]} 0.75">')
    xml = xml.replace('<geom name="torso_geom" pos="0 0 0" size="0.25" type="sphere"/>',
                      '<geom name="torso_geom" contype="1" pos="0 0 0" size="0.25" type="sphere"/>')
    # brax reads the initial pose from the custom init_qpos (x, y, z first)
    xml = xml.replace('data="0.0 0.0 0.55 1.0', f'data="{start[0]} {start[1]} 0.55 1.0')
    return xml


def _build(backend: str):
    try:
        from brax.envs.base import PipelineEnv
        from brax.io import mjcf
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError("AntMaze-sparse needs brax (0.14): pip install -e '.[brax]'.") from err
    if backend not in ("positional", "spring", "generalized"):
        raise ValueError(f"AntMaze-sparse backend must be positional, spring or generalized, got {backend!r}.")
    sys = mjcf.loads(maze_xml())
    n_frames = 5
    if backend in ("positional", "spring"):  # brax's Ant settings for these backends
        sys = sys.tree_replace({"opt.timestep": 0.005})
        sys = sys.replace(actuator=sys.actuator.replace(gear=200 * jnp.ones_like(sys.actuator.gear)))
        n_frames = 10

    class _Pipeline(PipelineEnv):  # only pipeline_init / pipeline_step are used
        def reset(self, rng):
            raise NotImplementedError

        def step(self, state, action):
            raise NotImplementedError

    return _Pipeline(sys=sys, backend=backend, n_frames=n_frames)


@flax.struct.dataclass
class EnvState(environment.EnvState):
    pipeline: Any  # brax pipeline state
    time: int


@flax.struct.dataclass
class EnvParams(environment.EnvParams):
    goal_centres: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([[-1.5, 1.5]]))
    goal_radii: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([0.75]))
    max_steps_in_episode: int = 200


class AntMaze(environment.Environment[EnvState, EnvParams]):
    descriptor_low = (-HALF_SIZE, -HALF_SIZE)
    descriptor_high = (HALF_SIZE, HALF_SIZE)
    num_reward_areas = 1

    def __init__(self, backend: str = "spring"):
        super().__init__()
        self._brax = _build(backend)

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def step_env(self, key, state, action, params):
        a = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        pipeline = self._brax.pipeline_step(state.pipeline, a)
        time = state.time + 1
        state = EnvState(pipeline=pipeline, time=time)
        r, _ = goal_reward(self.descriptor(state, params), params.goal_centres, params.goal_radii)
        last = time >= params.max_steps_in_episode
        return self.get_obs(state, params), state, jnp.where(last, r, 0.0), jnp.array(False), {}

    def reset_env(self, key, params):
        sys = self._brax.sys
        pipeline = self._brax.pipeline_init(sys.init_q, jnp.zeros(sys.qd_size()))
        state = EnvState(pipeline=pipeline, time=0)
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None):
        return jnp.concatenate([state.pipeline.q, state.pipeline.qd])

    def is_terminated(self, state, params):
        return jnp.array(False)

    def descriptor(self, state, params):
        return state.pipeline.x.pos[0, :2]

    def reward_area(self, state, params):
        return goal_reward(self.descriptor(state, params), params.goal_centres, params.goal_radii)[1]

    def render(self, state, params, size):
        low = -HALF_SIZE * jnp.ones(2)
        return blob_image(self.descriptor(state, params)[None], low, -low, size)

    @property
    def name(self) -> str:
        return "AntMaze-sparse"

    @property
    def num_actions(self) -> int:
        return self._brax.action_size

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (self.num_actions,), jnp.float32)

    def observation_space(self, params):
        return spaces.Box(-jnp.inf, jnp.inf, (self._brax.sys.q_size() + self._brax.sys.qd_size(),), jnp.float32)


def make(backend: str = "spring", **kwargs: Any):
    return make_with_overrides(AntMaze(backend), **kwargs)
