"""Sparse-reward environments on worked examples."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.envs import make
from lfx.envs.sparse import curling, hard_maze, redundant_arm
from lfx.qd.evaluator import make_population_evaluator

NAMES = ["Curling-sparse", "HardMaze-sparse", "RedundantArm-sparse", "PointMass-sparse"]


def _run(env, params, actions, state=None):
    """Steps step_env with a fixed action sequence (lax.scan); returns the final state and rewards."""
    if state is None:
        _, state = env.reset_env(jax.random.key(0), params)

    def body(s, a):
        _, s, r, _, _ = env.step_env(jax.random.key(0), s, a, params)
        return s, (r, s)

    return jax.jit(lambda s, a: jax.lax.scan(body, s, a))(state, actions)


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_gymnax_step(name):
    env, params = make(name)
    obs, state = env.reset(jax.random.key(0), params)
    assert env.observation_space(params).shape == obs.shape
    obs2, _, r, term, trunc, info = env.step(jax.random.key(1), state, jnp.zeros(env.num_actions), params)
    assert obs2.shape == obs.shape and r.shape == () and "final_observation" in info
    with pytest.raises(ValueError, match="no parameter"):
        make(name, not_a_field=1.0)


def test_curling_ball_stops_under_friction():
    env, params = make("Curling-sparse")
    _, s0 = env.reset_env(jax.random.key(0), params)
    s0 = s0.replace(ball=jnp.array([0.0, 0.5]), ball_vel=jnp.array([0.0, 1.0]), q=jnp.array([0.0, 3.0]))
    s, (_, traj) = _run(env, params, jnp.zeros((30, 2)), s0)
    # constant deceleration 2.5: stops after 1.0 / 2.5 = 0.4 s = 8 steps, travelled v^2 / 2mu ~ 0.2
    speed = np.linalg.norm(np.asarray(traj.ball_vel), axis=-1)
    assert speed[7] == 0.0 and speed[6] > 0.0
    travelled = np.asarray(s.ball)[1] - 0.5
    dt, mu = 0.05, 2.5
    want = sum(max(1.0 - mu * dt * (i + 1), 0.0) * dt for i in range(30))
    assert travelled == pytest.approx(want, rel=1e-5)
    np.testing.assert_allclose(traj.ball[-1], traj.ball[10])


def test_curling_reward_in_goal_only_at_the_end():
    env, params = make("Curling-sparse", max_steps_in_episode=5)
    _, s0 = env.reset_env(jax.random.key(0), params)
    s0 = s0.replace(ball=jnp.array([0.8, -0.75]), q=jnp.array([0.0, 3.0]))  # 0.05 from the small goal
    _, (r, _) = _run(env, params, jnp.zeros((5, 2)), s0)
    np.testing.assert_allclose(r, [0, 0, 0, 0, (0.2 - 0.05) / 0.2], rtol=1e-5)
    assert int(env.reward_area(s0, params)) == 1


def test_curling_arm_pushes_ball():
    env, params = make("Curling-sparse")
    # Unfold the elbow (q1 -> 0) with the shoulder still: the tip sweeps through the ball at (0, -0.2).
    s, _ = _run(env, params, jnp.tile(jnp.array([0.0, -1.0]), (100, 1)))
    assert float(jnp.linalg.norm(s.ball - params.ball_start)) > 0.1
    assert np.isclose(float(curling.tip_position(jnp.zeros(2), params)[1]), -1.5 + 1.3)


def test_hard_maze_walls_block():
    env, params = make("HardMaze-sparse")
    # Drive straight up from (0.15, 0.15): the obstacle wall (0.14, 0.45)-(0, 0.65) ends 0.01 to the
    # left of the robot's path, so the robot (radius 0.015) must stop where its distance to that end
    # point is one radius: y = 0.45 - sqrt(0.015^2 - 0.01^2), at most one step (0.002) short of it.
    s, (_, traj) = _run(env, params, jnp.ones((250, 2)))
    y = np.asarray(traj.pos)[:, 1]
    assert np.all(np.diff(y) >= -1e-7)
    stop_y = 0.45 - np.sqrt(0.015**2 - 0.01**2)
    assert stop_y - 0.002 - 1e-6 < y.max() <= stop_y + 1e-6
    assert np.all(y[-100:] == y.max())  # blocked for good
    assert float(s.pos[0]) == pytest.approx(0.15, abs=1e-6)
    assert not bool(hard_maze.collides(s.pos, params))


def test_hard_maze_lasers_see_walls():
    env, params = make("HardMaze-sparse")
    obs = hard_maze.sense(jnp.array([0.5, 0.9]), jnp.array(jnp.pi / 2), params)
    assert float(obs[1]) == pytest.approx(0.1 / 0.2, rel=1e-5)  # top wall 0.1 ahead
    assert float(obs[0]) == pytest.approx(0.1 * np.sqrt(2) / 0.2, rel=1e-5)  # top wall along the diagonal
    down = hard_maze.sense(jnp.array([0.9, 0.9]), jnp.array(-jnp.pi / 2), params)
    # lasers at -45 / 0 / +45 deg of "down": nothing within 0.2, funnel wall 0.6 away, right wall 0.1 / cos 45
    np.testing.assert_allclose(down[:3], [1.0, 1.0, 0.1 * np.sqrt(2) / 0.2], rtol=1e-5)
    np.testing.assert_array_equal(down[3:], [-1.0, -1.0])  # no bumper contact
    near = hard_maze.sense(jnp.array([0.5, 0.98]), jnp.array(jnp.pi / 2), params)
    np.testing.assert_array_equal(near[3:], [1.0, 1.0])  # wall 0.02 ahead: both front bumpers


def test_arm_forward_kinematics():
    _, params = make("RedundantArm-sparse")
    assert np.allclose(redundant_arm.end_effector(jnp.zeros(20), params), [1.0, 0.5], atol=1e-6)
    q = jnp.zeros(20).at[0].set(jnp.pi / 2)
    assert np.allclose(redundant_arm.end_effector(q, params), [0.5, 1.0], atol=1e-6)
    q = jnp.zeros(20).at[10].set(jnp.pi)  # fold back at the middle: the tip returns to the base
    assert np.allclose(redundant_arm.end_effector(q, params), [0.5, 0.5], atol=1e-6)
    rng = np.random.default_rng(0)
    q = rng.uniform(-1, 1, 20)
    phi = np.cumsum(q)
    want = np.array([0.5, 0.5]) + 0.025 * np.array([np.cos(phi).sum(), np.sin(phi).sum()])
    assert np.allclose(redundant_arm.end_effector(jnp.asarray(q, jnp.float32), params), want, atol=1e-5)


def test_population_evaluator_matches_single_rollouts():
    env, params = make("PointMass-sparse", max_steps_in_episode=10)
    lin = lambda g, o: jnp.tanh(g[:2] + g[2:4] * o[2])
    genomes = jnp.array([[0.5, 0.5, 3.0, 3.0], [-1.0, 0.2, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    out = jax.jit(make_population_evaluator(env, params, lin))(jax.random.key(0), genomes)
    for i in range(3):
        pos = np.array([0.5, 0.5])
        for t in range(10):
            a = np.tanh(np.asarray(genomes[i, :2]) + np.asarray(genomes[i, 2:4]) * t / 10)
            pos = np.clip(pos + 0.03 * a, 0, 1)
        np.testing.assert_allclose(out.descriptor[i], pos, rtol=1e-5)
        d = np.linalg.norm(pos - [0.9, 0.9])
        assert float(out.fitness[i]) == pytest.approx(max(0.05 - d, 0) / 0.05 if d <= 0.05 else 0.0, abs=1e-5)
