"""Outcome teleportation (lfx.gfn.teleport): zero at the exact outcome-conditioned flow, NumPy loop reference.

The exact flow of R(x|y) = 1[x = y] with a uniform PB comes from `lfx.gfn.exact.exact_flows` on the
hypergrid 2x4 with its reward replaced by the outcome indicator (one enumeration per outcome y; four
outcomes, 34 successful paths, to keep the test fast: a corner, an interior point, s0 itself and an
edge point).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.gfn.exact import exact_flows
from lfx.gfn.hypergrid import make_hypergrid
from lfx.gfn.networks import PolicyOutput
from lfx.gfn.ocgfn import conditional_rollout, teleport_loss
from lfx.gfn.rollout import NEG
from lfx.gfn.teleport import outcome_log_reward, teleported_detailed_balance


class OutcomeReward:
    """The env with log R(x) replaced by log 1[x = y] (0 or -inf)."""

    def __init__(self, env, y):
        self._env, self._y = env, jnp.asarray(y, jnp.int32)

    def __getattr__(self, name):
        return getattr(self._env, name)

    def log_reward(self, state, params):
        return jnp.where(jnp.all(state.obj == self._y), 0.0, -jnp.inf)


OUTCOMES = np.array([[3, 3], [1, 2], [0, 0], [2, 3]])


@pytest.fixture(scope="module")
def exact():
    """hypergrid 2x4 and, for every outcome y of OUTCOMES, ExactFlows of R(.|y) (one state order)."""
    env, ep = make_hypergrid(2, 4)
    with np.errstate(invalid="ignore", divide="ignore"):
        flows = [exact_flows(OutcomeReward(env, y), ep) for y in OUTCOMES]
    return env, ep, OUTCOMES, flows


def all_paths(fl, y_row):
    """Every complete trajectory s0 -> ... -> y -> exit with PF > 0, as lists of (state row, action)."""
    A = fl.fwd_mask.shape[1]
    kids = {}
    for i, s in enumerate(fl.states):
        for a in range(A - 1):
            if fl.fwd_mask[i, a]:
                c = s.copy()
                c[a] += 1  # hypergrid: action a increments coordinate a
                kids[i, a] = fl.index[tuple(c)]
    out = []

    def walk(i, path):
        if i == y_row:
            out.append([*path, (i, A - 1)])
        for a in range(A - 1):
            if fl.fwd_mask[i, a] and np.isfinite(fl.log_pf[i, a]):
                walk(kids[i, a], [*path, (i, a)])

    walk(fl.index[tuple(fl.states[0])], [])
    return out, kids


def path_arrays(fl, paths, kids, T, d_flow=None):
    """[T, B] log F, log PF, log PB, valid, is_exit of `paths` under one outcome's exact flow."""
    d_flow = np.zeros(len(fl.states)) if d_flow is None else d_flow
    B = len(paths)
    lf, lpf, lpb = np.zeros((T, B)), np.zeros((T, B)), np.zeros((T, B))
    valid, is_exit = np.zeros((T, B), bool), np.zeros((T, B), bool)
    for b, path in enumerate(paths):
        for t, (i, a) in enumerate(path):
            lf[t, b], lpf[t, b], valid[t, b] = fl.log_flow[i] + d_flow[i], fl.log_pf[i, a], True
            is_exit[t, b] = a == fl.fwd_mask.shape[1] - 1
            if t > 0:
                prev_i, prev_a = path[t - 1]
                assert kids[prev_i, prev_a] == i
                lpb[t, b] = -np.log(fl.bwd_mask[i].sum())  # uniform PB into s_t
    return [jnp.asarray(x, jnp.float32) for x in (lf, lpf, lpb)] + [jnp.asarray(valid), jnp.asarray(is_exit)]


def test_teleportation_is_zero_on_every_successful_path_of_the_exact_conditional_flow(exact):
    env, ep, ys, flows = exact
    exact_arrays, shifted = [], []
    for y, fl in zip(ys, flows):
        np.testing.assert_allclose(fl.log_z, 0.0, atol=1e-9)  # Z(y) = 1
        paths, kids = all_paths(fl, fl.index[tuple(y)])
        exact_arrays.append(path_arrays(fl, paths, kids, env.max_steps))
        d = np.zeros(len(fl.states))
        d[0] = 0.1  # log F(s0|y) + 0.1: the first edge of every path is off by 0.1, nothing else
        shifted.append(path_arrays(fl, paths, kids, env.max_steps, d)[0])
    lf, lpf, lpb, valid, is_exit = (jnp.concatenate(z, 1) for z in zip(*exact_arrays))
    B = lf.shape[1]
    assert B == sum(math.comb(int(a) + int(b), int(a)) for a, b in ys) == 34
    loss_fn = jax.jit(teleported_detailed_balance)
    loss, _ = loss_fn(lf, lpf, lpb, jnp.zeros(B), valid, is_exit)
    assert float(loss) < 1e-6, float(loss)
    loss2, _ = loss_fn(jnp.concatenate(shifted, 1), lpf, lpb, jnp.zeros(B), valid, is_exit)
    np.testing.assert_allclose(float(loss2), 0.01 * B / float(valid.sum()), rtol=1e-3)


def test_exact_conditional_policy_always_succeeds_and_the_recipe_loss_is_zero_there(exact):
    # The table policy plays the exact flows through the OC-GFN network interface
    # (`conditional_rollout`, `teleport_loss`); params = an additive perturbation of log F(s|y).
    env, ep, ys, flows = exact
    all_obs = jax.vmap(env.get_obs, in_axes=(0, None))(
        jax.vmap(lambda o: env.init_state().replace(obj=o))(jnp.asarray(flows[0].states)), ep)
    y_rows = [flows[0].index[tuple(y)] for y in ys]
    with np.errstate(invalid="ignore"):
        lpf = np.stack([np.where(np.isfinite(f.log_pf), f.log_pf, NEG) for f in flows])  # [Y, S, A]
    lfl = np.stack([np.where(np.isfinite(f.log_flow), f.log_flow, NEG) for f in flows])  # [Y, S]
    lpf, lfl = jnp.asarray(lpf, jnp.float32), jnp.asarray(lfl, jnp.float32)
    y_obs_all = all_obs[jnp.asarray(y_rows)]

    def apply(d_flow, obs, yo):
        s = jnp.argmax(obs @ all_obs.T, -1)
        y = jnp.argmax(yo @ y_obs_all.T, -1)
        return PolicyOutput(lpf[y, s], jnp.zeros((obs.shape[0], env.num_backward_actions)), lfl[y, s] + d_flow[y, s])

    k1, k2 = jax.random.split(jax.random.key(0))
    y = jnp.asarray(ys)[jax.random.randint(k1, (256,), 0, len(ys))]
    zero = jnp.zeros(lfl.shape)
    tr = jax.jit(lambda k, p, y: conditional_rollout(k, p, env, ep, apply, y))(k2, zero, y)
    assert bool(jnp.all(tr.terminal_obj == y))  # the exact conditional policy reaches y always
    log_r = outcome_log_reward(tr.terminal_obj, y, -5.0)
    loss_fn = jax.jit(lambda p: teleport_loss(p, env, ep, apply, tr, y, log_r)[0])
    loss = loss_fn(zero)
    assert float(loss) < 1e-6
    loss_p = loss_fn(0.3 * jax.random.normal(jax.random.key(1), lfl.shape))
    assert float(loss_p) > 0.05, float(loss_p)


def test_failed_trajectories_carry_log_r_fail_into_every_transition():
    # NumPy loop reference: residual_t = lF_t + lPF_t - (lF_t+1 + lPB_t+1) - log R on non-exit
    # edges, lF_t + lPF_t - log R on the exit edge, averaged over valid edges of both lanes.
    rng = np.random.default_rng(0)
    T, B = 5, 3
    lf, lpf, lpb = (rng.normal(size=(T, B)) for _ in range(3))
    lpb[0] = 0.0
    length = np.array([5, 2, 3])
    valid = np.arange(T)[:, None] < length[None]
    is_exit = np.arange(T)[:, None] == (length - 1)[None]
    x = np.array([[1, 2], [0, 0], [3, 1]])
    y = np.array([[1, 2], [0, 1], [2, 1]])  # lane 0 succeeds, lanes 1, 2 fail
    log_r = np.asarray(outcome_log_reward(jnp.asarray(x), jnp.asarray(y), -4.0))
    np.testing.assert_array_equal(log_r, [0.0, -4.0, -4.0])
    sq, n = 0.0, 0
    for b in range(B):
        for t in range(length[b]):
            rhs = log_r[b] if t == length[b] - 1 else lf[t + 1, b] + lpb[t + 1, b] + log_r[b]
            sq += (lf[t, b] + lpf[t, b] - rhs) ** 2
            n += 1
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    loss, _ = teleported_detailed_balance(f32(lf), f32(lpf), f32(lpb), f32(log_r), jnp.asarray(valid),
                                          jnp.asarray(is_exit))
    np.testing.assert_allclose(float(loss), sq / n, rtol=1e-5)


@pytest.mark.parametrize("bad", [np.zeros((4, 2)), np.zeros((5,))])
def test_shapes_are_checked(bad):
    z = jnp.zeros((5, 2))
    with pytest.raises(AssertionError):
        if bad.ndim == 2:
            teleported_detailed_balance(z, jnp.asarray(bad), z, jnp.zeros(2), z > 0, z > 0)
        else:
            teleported_detailed_balance(z, z, z, jnp.zeros((2, 1)), z > 0, z > 0)
