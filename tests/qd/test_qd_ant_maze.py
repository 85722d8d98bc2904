"""AntMaze-sparse (brax's ant in a walled U-maze) on worked dynamics; skipped without brax."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("brax")

from lfx.envs import make

T = 40  # control steps of 0.05 s


@pytest.fixture(scope="module")
def ant():
    """(env, params, run) with run(params, q0, qd0, actions [T, 8]) -> (xy [T, 2], q [T, 15], r [T]), jitted once."""
    env, params = make("AntMaze-sparse")
    pipe = env._brax

    @jax.jit
    def run(params, q0, qd0, actions):
        _, s = env.reset_env(jax.random.key(0), params)
        s = s.replace(pipeline=pipe.pipeline_init(q0, qd0))

        def body(s, a):
            _, s, r, _, _ = env.step_env(jax.random.key(0), s, a, params)
            return s, (env.descriptor(s, params), s.pipeline.q, r)

        return jax.lax.scan(body, s, actions)[1]

    return env, params, run


def _launch(env, x, y, vy):
    sys = env._brax.sys
    return sys.init_q.at[0].set(x).at[1].set(y), jnp.zeros(sys.qd_size()).at[1].set(vy)


def test_inner_wall_blocks_a_launch_that_crosses_open_ground(ant):
    env, params, run = ant
    # The same 6 m/s launch towards +y from y = -0.9: at x = 2 (past the inner wall's end at x = 1)
    # the ant crosses y = 0; at x = -1.5 the wall (face at y = -0.05) stops the torso (radius 0.25)
    # before y = -0.30.
    xy_open, _, _ = run(params, *_launch(env, 2.0, -0.9, 6.0), jnp.zeros((T, 8)))
    xy_wall, _, _ = run(params, *_launch(env, -1.5, -0.9, 6.0), jnp.zeros((T, 8)))
    assert float(xy_open[:, 1].max()) > 0.3
    assert float(xy_wall[:, 1].max()) <= -0.30 + 1e-3


def test_motors_move_the_joints_and_a_still_ant_stays_put(ant):
    env, params, run = ant
    q0 = env._brax.sys.init_q
    xy, q, _ = run(params, q0, jnp.zeros(env._brax.sys.qd_size()), jnp.zeros((T, 8)))
    np.testing.assert_allclose(xy[-1], [-1.5, -1.5], atol=1e-2)  # the start, at rest
    _, q, _ = run(params, q0, jnp.zeros(env._brax.sys.qd_size()), jnp.ones((T, 8)))
    hips = np.asarray(q[-1, 7::2] - q0[7::2])
    assert np.all(np.abs(hips) > 0.3)  # full motor command swings every hip (range +-30 deg = 0.52 rad)


def test_reward_only_at_the_last_step_inside_the_goal(ant):
    env, params, run = ant
    sys = env._brax.sys
    q = sys.init_q.at[0].set(-1.5 + 0.3).at[1].set(1.5)  # 0.3 from the goal's centre (radius 0.75)
    xy, _, r = run(params.replace(max_steps_in_episode=T), q, jnp.zeros(sys.qd_size()), jnp.zeros((T, 8)))
    d = float(jnp.linalg.norm(xy[-1] - jnp.array([-1.5, 1.5])))
    assert d == pytest.approx(0.3, abs=0.02)
    np.testing.assert_allclose(r[:-1], 0.0)
    assert float(r[-1]) == pytest.approx((0.75 - d) / 0.75, rel=1e-4)
    q = sys.init_q  # at the start, far from the goal: no reward even at the end
    _, _, r = run(params.replace(max_steps_in_episode=T), q, jnp.zeros(sys.qd_size()), jnp.zeros((T, 8)))
    np.testing.assert_allclose(r, 0.0)
