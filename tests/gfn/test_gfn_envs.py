"""GFlowNet environments: worked examples, masks, backward-of-forward identity, exact targets."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.gfn.base import GFNState
from lfx.gfn.bitseq import make_bitseq, make_modes, words_to_bits
from lfx.gfn.exact import _batch_state, enumerate_states, exact_target
from lfx.gfn.game24 import apply_op, make_game24, solutions_bruteforce
from lfx.gfn.hypergrid import HypergridParams, hypergrid_reward, make_hypergrid
from lfx.gfn.ising import make_ising, torus_edges
from lfx.gfn.networks import make_policy
from lfx.gfn.rollout import forward_rollout

ENVS = {
    "hypergrid2x8": lambda: make_hypergrid(2, 8),
    "hypergrid3x5": lambda: make_hypergrid(3, 5, r0=0.1),
    "bitseq8_2": lambda: make_bitseq(8, 2, num_modes=4),
    "ising3": lambda: make_ising(3, coupling=0.3, field=0.1),
    "game24": lambda: make_game24((4, 7, 8, 8)),
}


def _np_hypergrid_reward(x, H, r0, r1, r2, eps=1e-9):
    u = np.abs(np.asarray(x) / (H - 1) - 0.5)
    outer = np.all(u > 0.25 + eps)
    band = np.all((u > 0.3 + eps) & (u < 0.4 - eps))
    return r0 + r1 * outer + r2 * band


def test_hypergrid_reward_worked_examples_and_symmetry():
    p = HypergridParams(r0=0.1, r1=0.5, r2=2.0)
    # H = 8: u(0) = 0.5 (outer only), u(1) = 0.357 (outer + band), u(2) = 0.214 (neither)
    ex = {(0, 0): 0.6, (1, 1): 2.6, (2, 2): 0.1, (0, 1): 0.6, (1, 6): 2.6, (7, 7): 0.6, (3, 1): 0.1}
    for x, r in ex.items():
        np.testing.assert_allclose(hypergrid_reward(jnp.array(x), 8, p), r, rtol=1e-6)
    heights = np.arange(2, 33)
    xs = np.arange(32)
    r_all = np.asarray(jax.jit(hypergrid_reward)(xs[None, :, None], heights[:, None, None], p))
    for H, r_row in zip(heights, r_all):
        r = r_row[:H]
        np.testing.assert_allclose(r, r[::-1])  # symmetric under x -> H - 1 - x
        ref = [_np_hypergrid_reward([x], H, 0.1, 0.5, 2.0) for x in range(H)]
        np.testing.assert_allclose(r, ref, rtol=1e-6)


def test_hypergrid_transitions_worked_example():
    env, ep = make_hypergrid(2, 4)
    s = env.init_state()
    for a in (0, 1, 1, 1):
        s = env.step_forward(s, jnp.int32(a), ep)
    np.testing.assert_array_equal(s.obj, [1, 3])
    np.testing.assert_array_equal(env.forward_mask(s, ep), [True, False, True])
    np.testing.assert_array_equal(env.backward_mask(s, ep), [True, True])
    s2 = env.step_forward(s, jnp.int32(env.exit_action), ep)
    assert bool(s2.done) and tuple(np.asarray(s2.obj)) == (1, 3)
    # the gymnax interface pays R(x) on the exit step and terminates
    _, st = env.reset(jax.random.key(0), ep)
    _, st, r, term, trunc, _ = env.step(jax.random.key(1), st, jnp.int32(2), ep)
    assert bool(term) and not bool(trunc)
    np.testing.assert_allclose(r, float(hypergrid_reward(jnp.zeros(2, jnp.int32), 4, ep)), rtol=1e-6)


def test_positional_transitions_worked_example():
    env, ep = make_bitseq(6, 2, num_modes=2)  # 3 slots, 4 words
    s = env.init_state()
    s = env.step_forward(s, jnp.int32(2 * 4 + 3), ep)  # slot 2 <- word 3
    s = env.step_forward(s, jnp.int32(0 * 4 + 1), ep)  # slot 0 <- word 1
    np.testing.assert_array_equal(s.obj, [1, -1, 3])
    m = np.asarray(env.forward_mask(s, ep))
    assert m[4:8].all() and not m[:4].any() and not m[8:12].any() and not m[-1]
    np.testing.assert_array_equal(env.backward_mask(s, ep), [True, False, True])
    np.testing.assert_array_equal(words_to_bits(jnp.array([1, 2, 3]), 2), [0, 1, 1, 0, 1, 1])
    s = env.step_forward(s, jnp.int32(1 * 4 + 0), ep)
    assert bool(env.forward_mask(s, ep)[-1]) and int(env.forward_mask(s, ep).sum()) == 1


def test_bitseq_reward_against_numpy():
    env, ep = make_bitseq(8, 2, num_modes=5, beta=3.0, seed=3)
    modes = make_modes(3, 8, 2, 5)
    assert len({tuple(m) for m in modes}) == 5
    objs, probs, log_z = exact_target(env, ep)
    assert objs.shape == (256, 4)
    bits = np.array([[int(c) for c in "".join(f"{w:02b}" for w in o)] for o in objs])
    dist = (bits[:, None, :] != modes[None]).sum(-1).min(-1)
    ref = -3.0 * dist / 8
    np.testing.assert_allclose(np.log(probs) + log_z, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_z, np.logaddexp.reduce(ref), rtol=1e-6)


def test_ising_reward_and_partition_against_brute_force():
    env, ep = make_ising(3, coupling=0.3, field=0.1)
    assert len(torus_edges(3)) == 18
    objs, probs, log_z = exact_target(env, ep)
    ref = []
    for o in itertools.product((0, 1), repeat=9):
        s = 2 * np.array(o).reshape(3, 3) - 1
        e = sum(s[r, c] * (s[r, (c + 1) % 3] + s[(r + 1) % 3, c]) for r in range(3) for c in range(3))
        ref.append(0.3 * e + 0.1 * s.sum())
    np.testing.assert_allclose(log_z, np.logaddexp.reduce(ref), rtol=1e-5)
    np.testing.assert_allclose(np.log(probs) + log_z, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(ENVS))
def test_rollout_never_samples_invalid_actions(name):
    env, ep = ENVS[name]()
    init, apply = make_policy(env.obs_size, env.num_actions, env.num_backward_actions, hidden=(32,))
    params = init(jax.random.key(0))
    roll = jax.jit(
        lambda k, eps: forward_rollout(k, params, env, ep, apply, 128, epsilon=eps, temperature=2.0)
    )
    fmask = jax.jit(jax.vmap(env.forward_mask, in_axes=(0, None)))
    step = jax.vmap(env.step_forward, in_axes=(0, 0, None))

    @jax.jit
    def replay(actions, valid):
        # replaying the actions with step_forward reproduces the stored states and terminal objects
        def body(s, av):
            a, v = av
            n = step(s, a, ep)
            n = jax.tree.map(lambda x, y: jnp.where(v.reshape(-1, *[1] * (x.ndim - 1)), x, y), n, s)
            return n, s.obj

        s0 = jax.vmap(lambda _: env.init_state())(jnp.arange(actions.shape[1]))
        return jax.lax.scan(body, s0, (actions, valid))

    for seed, eps in ((0, 1.0), (1, 0.1)):
        tr = roll(jax.random.key(seed), eps)
        assert bool(jnp.all(tr.is_exit.sum(0) == 1)) and int(tr.length.max()) <= env.max_steps
        T, B = tr.valid.shape
        st = GFNState(
            time=jnp.zeros(T * B, jnp.int32),
            obj=tr.obj.reshape(T * B, -1),
            done=jnp.zeros(T * B, bool),
        )
        m = np.asarray(fmask(st, ep)).reshape(T, B, -1)
        a = np.asarray(tr.actions)
        taken = np.take_along_axis(m, a[..., None], -1)[..., 0]
        assert taken[np.asarray(tr.valid)].all()
        # replaying the actions with step_forward reproduces the stored states and terminal objects
        s, objs = replay(tr.actions, tr.valid)
        v = np.asarray(tr.valid)
        np.testing.assert_array_equal(np.asarray(objs)[v], np.asarray(tr.obj)[v])
        np.testing.assert_array_equal(s.obj, tr.terminal_obj)
        assert bool(jnp.all(s.done))


@functools.cache
def _states(name):
    env, ep = ENVS[name]()
    return enumerate_states(env, ep)


@pytest.mark.parametrize("name", ["hypergrid3x5", "bitseq8_2", "ising3", "game24"])
def test_backward_of_forward_is_identity(name):
    env, ep = ENVS[name]()
    states = np.concatenate(_states(name))
    rng = np.random.default_rng(0)
    states = states[rng.choice(len(states), size=min(len(states), 300), replace=False)]
    A, Ab = env.exit_action, env.num_backward_actions
    vv = lambda f: jax.vmap(jax.vmap(f, in_axes=(None, 0, None)), in_axes=(0, None, None))  # noqa: E731
    flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
    vm = lambda f: jax.vmap(f, in_axes=(0, None))  # noqa: E731
    vm2 = lambda f: jax.vmap(f, in_axes=(0, 0, None))  # noqa: E731

    @jax.jit
    def check(obj):
        st = _batch_state(env, obj)
        acts = jnp.arange(A)
        child_f = jax.tree.map(flat, vv(env.apply_forward)(st, acts, ep))
        bwd = flat(vv(env.backward_action)(st, acts, ep))
        bacts = jnp.arange(Ab)
        par_f = jax.tree.map(flat, vv(env.apply_backward)(st, bacts, ep))
        fa = flat(vv(env.forward_action)(st, bacts, ep))
        return dict(
            fmask=vm(env.forward_mask)(st, ep)[:, :-1].reshape(-1),
            back=vm2(env.apply_backward)(child_f, bwd, ep).obj,
            fwd_again=vm2(env.forward_action)(child_f, bwd, ep),
            cmask=jnp.take_along_axis(vm(env.backward_mask)(child_f, ep), bwd[:, None], 1)[:, 0],
            bmask=vm(env.backward_mask)(st, ep).reshape(-1),
            again=vm2(env.apply_forward)(par_f, fa, ep).obj,
            pmask=jnp.take_along_axis(vm(env.forward_mask)(par_f, ep), fa[:, None], 1)[:, 0],
        )

    r = jax.tree.map(np.asarray, check(jnp.asarray(states)))
    ok = r["fmask"]
    # backward of forward: undoing a valid forward action returns to the state, by a valid action
    np.testing.assert_array_equal(r["back"][ok], np.repeat(states, A, axis=0)[ok])
    np.testing.assert_array_equal(r["fwd_again"][ok], np.tile(np.arange(A), len(states))[ok])
    assert r["cmask"][ok].all()
    # forward of backward: every valid parent leads back by its (valid) forward action
    okb = r["bmask"]
    np.testing.assert_array_equal(r["again"][okb], np.repeat(states, Ab, 0)[okb])
    assert r["pmask"][okb].all()


def test_state_counts_by_enumeration():
    env, ep = make_hypergrid(3, 5)
    assert sum(len(lv) for lv in enumerate_states(env, ep)) == 5**3
    env, ep = make_bitseq(6, 2)
    assert sum(len(lv) for lv in enumerate_states(env, ep)) == 5**3
    objs, probs, _ = exact_target(*make_hypergrid(4, 16))
    assert objs.shape == (16**4, 4) and abs(probs.sum() - 1) < 1e-9


def test_invalid_configs_raise():
    with pytest.raises(ValueError, match="multiple of k"):
        make_bitseq(7, 2)
    with pytest.raises(ValueError, match="height"):
        make_hypergrid(2, 1)


def test_game24_solutions_match_bruteforce_fractions():
    env, ep = ENVS["game24"]()
    levels = _states("game24")
    assert [len(lv) for lv in levels[:2]] == [1, 36]
    last = levels[-1]
    assert len(last) <= 3888
    solved = np.asarray(jax.jit(jax.vmap(env.is_solved))(jnp.asarray(last)))
    seqs = sorted(tuple(int(a) for a in o[32:35]) for o in last[solved])
    ref = sorted(solutions_bruteforce((4, 7, 8, 8)))
    assert len(ref) > 0 and seqs == ref
    # worked example: (7 - 8 / 8) * 4 = 24 with exact fractions; 8 / 3 stays a fraction
    n, d, ok = apply_op(jnp.int32(4), (jnp.int32(8), jnp.int32(1)), (jnp.int32(3), jnp.int32(1)))
    assert (int(n), int(d), bool(ok)) == (8, 3, True)
    n, d, ok = apply_op(jnp.int32(5), (jnp.int32(0), jnp.int32(1)), (jnp.int32(3), jnp.int32(1)))
    assert not bool(ok)  # 3 / 0 is masked
    # slots [4, 7, 8, 8]; pairs (0,1)..(2,3) are 0..5: 8 / 8 -> [4, 7, 1, _], 7 - 1 -> [4, 6, _, _],
    # 4 * 6 -> [24, _, _, _]
    s = env.init_state()
    for a in (5 * 6 + 4, 3 * 6 + 2, 0 * 6 + 1):
        assert bool(env.forward_mask(s, ep)[a])
        s = env.step_forward(s, jnp.int32(a), ep)
    assert bool(env.forward_mask(s, ep)[-1]) and int(env.forward_mask(s, ep).sum()) == 1
    assert bool(env.is_solved(s.obj))
    np.testing.assert_allclose(env.log_reward(s, ep), np.log(100.0), rtol=1e-6)


def test_skip_variants_sample_identical_trajectories():
    env, ep = make_hypergrid(3, 6)
    init, apply = make_policy(env.obs_size, env.num_actions, env.num_backward_actions, hidden=(16,))
    p = init(jax.random.key(0))
    roll = jax.jit(lambda k: forward_rollout(k, p, env, ep, apply, 64))
    a = roll(jax.random.key(1))
    for kw in ({"skip_chunk": 4}, {"skip_done": True}):
        b = jax.jit(lambda k, kw=kw: forward_rollout(k, p, env, ep, apply, 64, **kw))(jax.random.key(1))
        np.testing.assert_array_equal(b.terminal_obj, a.terminal_obj)
        np.testing.assert_array_equal(b.valid, a.valid)
        np.testing.assert_allclose(b.log_pf, a.log_pf, rtol=1e-5, atol=1e-6)
