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
    obs2, _, r, _term, _trunc, info = env.step(jax.random.key(1), state, jnp.zeros(env.num_actions), params)
    assert obs2.shape == obs.shape and r.shape == () and "final_observation" in info
    with pytest.raises(ValueError, match="no parameter"):
        make(name, not_a_field=1.0)


def _curling_state(env, params, **fields):
    _, s0 = env.reset_env(jax.random.key(0), params)
    return s0.replace(**{k: jnp.asarray(v, jnp.float32) for k, v in fields.items()})


def test_curling_ball_damping_matches_box2d_formula():
    env, params = make("Curling-sparse")
    s0 = _curling_state(env, params, ball=[0.0, -0.9], ball_vel=[0.6, 0.0], q=[-1.2, 0.0])  # arm out of the way
    s, _ = _run(env, params, jnp.zeros((60, 2)), s0)
    x, v, h, c = 0.0, 0.6, 1 / 60, 1.1
    for _ in range(60):  # Box2D: v <- v / (1 + h c), then x <- x + h v
        v = v / (1 + h * c)
        x += h * v
    assert float(s.ball_vel[0]) == pytest.approx(v, rel=1e-5)
    assert float(s.ball[0]) == pytest.approx(x, rel=1e-4)
    assert float(s.ball[1]) == pytest.approx(-0.9)


def test_curling_wall_bounce_elastic_above_threshold_inelastic_below():
    env, params = make("Curling-sparse", linear_damping=0.0)
    lim = 1.5 - 0.05 - 0.15
    fast = _curling_state(env, params, ball=[lim - 0.01, 0.5], ball_vel=[2.0, 0.3], q=[-1.2, 0.0])
    s, _ = _run(env, params, jnp.zeros((1, 2)), fast)
    np.testing.assert_allclose(s.ball_vel, [-0.95 * 2.0, 0.3], rtol=1e-6)
    assert float(s.ball[0]) == pytest.approx(lim)
    slow = _curling_state(env, params, ball=[lim - 0.001, 0.5], ball_vel=[0.5, 0.0], q=[-1.2, 0.0])
    s, _ = _run(env, params, jnp.zeros((1, 2)), slow)
    np.testing.assert_allclose(s.ball_vel, [0.0, 0.0], atol=1e-7)  # < 1 m/s: no bounce


def test_curling_arm_kinematics_and_joint_limits():
    env, params = make("Curling-sparse")
    np.testing.assert_allclose(curling.tip_position(jnp.zeros(2), params), [0.0, 0.4], atol=1e-6)
    q = jnp.array([0.5 * np.pi, 0.0])
    np.testing.assert_allclose(curling.tip_position(q, params), [-1.9, -1.5], atol=1e-6)
    # velocity control at 1 rad/s: 60 steps of +1 turn joint 0 by 1 rad; 120 more stop at 0.4 pi
    s, (_, traj) = _run(env, params, jnp.tile(jnp.array([1.0, -2.0]), (180, 1)))
    np.testing.assert_allclose(traj.q[59], [1.0, -1.0], rtol=1e-5)
    np.testing.assert_allclose(s.q, [0.4 * np.pi, -0.9 * np.pi], rtol=1e-5)
    np.testing.assert_allclose(s.qd, [0.0, 0.0], atol=1e-4)


@pytest.mark.parametrize("speed, restitution", [(1.0, 0.9), (0.5, 0.0)])
def test_curling_link_impulse_on_a_worked_example(speed, restitution):
    """Arm upright, ball at rest touching link 0's side at height y = 0 (1.5 above the base).

    Turning joint 0 clockwise at w moves that point right at 1.5 w; the ball leaves at
    (1 + e) 1.5 w with e = 0.9 above the 1 m/s threshold and e = 0 below it.
    """
    env, params = make("Curling-sparse", linear_damping=0.0)
    s0 = _curling_state(env, params, ball=[0.2, 0.0], q=[0.0, 0.0])  # touches link 1
    s, _ = _run(env, params, jnp.array([[-speed, 0.0]]), s0)
    v = (1.0 + restitution) * 1.5 * speed
    np.testing.assert_allclose(s.ball_vel, [v, 0.0], atol=1e-5)
    np.testing.assert_allclose(s.ball, [0.2 + v / 60, 0.0], atol=1e-5)


def test_curling_struck_ball_comes_to_rest_on_the_table():
    env, params = make("Curling-sparse")
    # Swing the arm left with the elbow folding (it passes under the ball), then back right.
    actions = jnp.concatenate([jnp.tile(jnp.array([1.0, 1.0]), (60, 1)), jnp.tile(jnp.array([-1.0, 0.0]), (440, 1))])
    s, (_, traj) = _run(env, params, actions)
    ball = np.asarray(traj.ball)
    assert np.linalg.norm(ball[-1] - np.asarray(params.ball_start)) > 0.5  # the arm moved it
    assert float(jnp.linalg.norm(s.ball_vel)) < 1e-2  # damping brought it to rest
    assert np.all(np.abs(ball) <= 1.3 + 1e-6)  # never through a wall


def test_curling_still_arm_and_walls_never_add_speed():
    """With the arm held still, every bounce (link e = 0.9, wall e = 0.95) and damping only slow the ball."""
    env, params = make("Curling-sparse")
    rng = np.random.default_rng(0)
    for q, v in zip(rng.uniform(-1.2, 1.2, (6, 2)), rng.uniform(-4, 4, (6, 2))):
        s0 = _curling_state(env, params, ball=[-0.5, 0.2], ball_vel=v, q=q)
        _, (_, traj) = _run(env, params, jnp.zeros((200, 2)), s0)
        speed = np.linalg.norm(np.asarray(traj.ball_vel), axis=1)
        assert np.all(np.diff(speed) <= 1e-5), (q, v)


def test_curling_reward_in_goal_only_at_the_end():
    env, params = make("Curling-sparse", max_steps_in_episode=5)
    s0 = _curling_state(env, params, ball=[0.8, -0.75], q=[-1.2, 0.0])  # 0.05 from the small goal's centre
    _, (r, _) = _run(env, params, jnp.zeros((5, 2)), s0)
    np.testing.assert_allclose(r, [0, 0, 0, 0, (0.2 - 0.05) / 0.2], rtol=1e-5)
    assert int(env.reward_area(s0, params)) == 1


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
    _, params = make("HardMaze-sparse")
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
