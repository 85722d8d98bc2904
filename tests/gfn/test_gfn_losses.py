"""GFlowNet losses: zero at the exact flow (identity) and equal to NumPy loop references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gfn_testutil import table_policy

from lfx.gfn import losses
from lfx.gfn.bitseq import make_bitseq
from lfx.gfn.exact import exact_flows
from lfx.gfn.hypergrid import make_hypergrid
from lfx.gfn.rollout import (
    backward_rollout,
    exploration_log_probs,
    forward_rollout,
    parent_edge_log_flows,
)

ENVS = {
    "hypergrid3x3": lambda: make_hypergrid(3, 3, r0=0.1),
    "bitseq4_2": lambda: make_bitseq(4, 2, num_modes=2),
}


def _random_log_pb(states, mask):
    rng = np.random.default_rng(len(states))
    logits = np.where(mask, rng.normal(size=mask.shape) * 2, -np.inf)
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def _all_losses(tr, log_z, env, ep, apply):
    out = {
        "tb": losses.trajectory_balance(log_z, tr.log_pf, tr.log_pb, tr.log_reward, tr.valid)[0],
        "logz_var": losses.log_partition_variance(tr.log_pf, tr.log_pb, tr.log_reward, tr.valid)[0],
        "db": losses.detailed_balance(tr.log_flow, tr.log_pf, tr.log_pb, tr.log_r, tr.valid, tr.is_exit)[0],
        "subtb": losses.subtrajectory_balance(
            tr.log_flow, tr.log_pf, tr.log_pb, tr.log_r, tr.valid, tr.is_exit, lam=0.9
        )[0],
    }
    return out


@pytest.mark.parametrize("env_name", sorted(ENVS))
@pytest.mark.parametrize("pb", ["uniform", "random"])
def test_losses_zero_at_exact_flow(env_name, pb):
    env, ep = ENVS[env_name]()
    flows = exact_flows(env, ep, None if pb == "uniform" else _random_log_pb)
    apply = table_policy(env, ep, flows)
    fm_apply = table_policy(env, ep, flows._replace(log_pf=flows.log_pf + flows.log_flow[:, None]))
    log_z = jnp.float32(flows.log_z)

    @jax.jit
    def run(key):
        k1, k2, k3 = jax.random.split(key, 3)
        tr = forward_rollout(k1, None, env, ep, apply, 64, learned_pb=True, epsilon=0.3)
        out = {"fwd_" + k: v for k, v in _all_losses(tr, log_z, env, ep, apply).items()}
        out["wrong_logz_tb"] = _all_losses(tr, log_z + 0.5, env, ep, apply)["tb"]
        out["one_exit"] = jnp.all(tr.is_exit.sum(0) == 1)
        # replay path: trajectories sampled BACKWARDS from terminal objects with PB, returned in
        # forward order, satisfy the same identities and start at s0 and end with the exit action
        btr = backward_rollout(k2, None, env, ep, apply, tr.terminal_obj, learned_pb=True)
        out.update({"bwd_" + k: v for k, v in _all_losses(btr, log_z, env, ep, apply).items()})
        out["bwd_starts_at_s0"] = jnp.all(btr.obj[0] == env.initial_obj())
        out["bwd_ends_with_exit"] = jnp.all(
            jnp.take_along_axis(btr.actions, (btr.length - 1)[None], 0) == env.exit_action
        ) & jnp.all(btr.is_exit.sum(0) == 1)
        # flow matching: edge flows F(s -> c) = F(s) PF(c|s), exit edge = R(s)
        ftr = forward_rollout(k3, None, env, ep, fm_apply, 64, exit_logit_from_reward=True,
                              keep_logits=True, epsilon=0.3)
        lin, inm = parent_edge_log_flows(None, env, ep, fm_apply, ftr.obj)
        out["fm"] = losses.flow_matching(lin, inm, ftr.fwd_logits, ftr.fwd_mask, ftr.valid)[0]
        out["fm_wrong"] = losses.flow_matching(lin + 0.3, inm, ftr.fwd_logits, ftr.fwd_mask, ftr.valid)[0]
        return out

    out = jax.tree.map(np.asarray, run(jax.random.key(0)))
    assert out.pop("one_exit") and out.pop("bwd_starts_at_s0") and out.pop("bwd_ends_with_exit")
    assert out.pop("wrong_logz_tb") > 0.2  # far from zero at a wrong log Z
    fm_wrong = out.pop("fm_wrong")
    if pb == "uniform":  # FM's edge flows are those of the uniform-PB flow
        assert fm_wrong > 0.05
    else:
        out.pop("fm")
    for name, v in out.items():
        assert float(v) < 1e-8, (name, float(v))


# ---------------------------------------------------------------- NumPy loop references
def _random_batch(seed, T=9, B=7, P=3, A=4):
    rng = np.random.default_rng(seed)
    length = rng.integers(1, T + 1, size=B)
    valid = np.arange(T)[:, None] < length[None]
    is_exit = np.arange(T)[:, None] == (length - 1)[None]
    f = lambda *s: rng.normal(size=s).astype(np.float32)  # noqa: E731
    log_pf = np.where(valid, -np.abs(f(T, B)), 0.0)
    log_pb = np.where(valid & (np.arange(T)[:, None] > 0), -np.abs(f(T, B)), 0.0)
    return dict(
        length=length, valid=valid, is_exit=is_exit, log_pf=log_pf.astype(np.float32),
        log_pb=log_pb.astype(np.float32), log_flow=f(T, B), log_r=f(T, B),
        log_reward=f(B), log_in=f(T, B, P), in_mask=rng.random((T, B, P)) < 0.6,
        log_out=f(T, B, A), out_mask=rng.random((T, B, A)) < 0.6,
    )


def _np_tb(d, log_z):
    out = []
    for b in range(len(d["length"])):
        n = d["length"][b]
        out.append((log_z + d["log_pf"][:n, b].sum() - d["log_pb"][:n, b].sum() - d["log_reward"][b]) ** 2)
    return np.mean(out)


def _np_logz_var(d):
    z = [d["log_reward"][b] + d["log_pb"][: n, b].sum() - d["log_pf"][:n, b].sum()
         for b, n in enumerate(d["length"])]
    return np.var(z)


def _np_db(d):
    tot, cnt = 0.0, 0
    for b, n in enumerate(d["length"]):
        for t in range(n):
            if t == n - 1:
                rhs = d["log_r"][t, b]
            else:
                rhs = d["log_flow"][t + 1, b] + d["log_pb"][t + 1, b]
            tot += (d["log_flow"][t, b] + d["log_pf"][t, b] - rhs) ** 2
            cnt += 1
    return tot / cnt


def _np_subtb(d, lam):
    per = []
    for b, n in enumerate(d["length"]):
        # nodes s_0..s_{n-1} (exit at step n-1), then s_f with flow R(x)
        node = [d["log_flow"][t, b] for t in range(n)] + [d["log_r"][n - 1, b]]
        num = den = 0.0
        for i in range(n + 1):
            for j in range(i + 1, n + 1):
                r = node[i] - node[j]
                for k in range(i, j):
                    r += d["log_pf"][k, b]
                    if k + 1 < n:
                        r -= d["log_pb"][k + 1, b]
                w = lam ** (j - i)
                num += w * r**2
                den += w
        per.append(num / den)
    return np.mean(per)


def _np_fm(d):
    tot, cnt = 0.0, 0
    for b, n in enumerate(d["length"]):
        for t in range(1, n):
            lin = np.logaddexp.reduce(np.where(d["in_mask"][t, b], d["log_in"][t, b], -np.inf))
            lout = np.logaddexp.reduce(np.where(d["out_mask"][t, b], d["log_out"][t, b], -np.inf))
            tot += (lin - lout) ** 2
            cnt += 1
    return tot / max(cnt, 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_losses_match_numpy_loops(seed):
    d = _random_batch(seed)
    # every state that FM sees needs at least one parent and one child
    d["in_mask"][..., 0] = True
    d["out_mask"][..., 0] = True
    j = {k: jnp.asarray(v) for k, v in d.items()}
    np.testing.assert_allclose(
        losses.trajectory_balance(0.7, j["log_pf"], j["log_pb"], j["log_reward"], j["valid"])[0],
        _np_tb(d, 0.7), rtol=1e-5,
    )
    np.testing.assert_allclose(
        losses.log_partition_variance(j["log_pf"], j["log_pb"], j["log_reward"], j["valid"])[0],
        _np_logz_var(d), rtol=1e-5,
    )
    np.testing.assert_allclose(
        losses.detailed_balance(j["log_flow"], j["log_pf"], j["log_pb"], j["log_r"], j["valid"], j["is_exit"])[0],
        _np_db(d), rtol=1e-5,
    )
    for lam in (0.5, 0.9, 1.0):
        np.testing.assert_allclose(
            losses.subtrajectory_balance(
                j["log_flow"], j["log_pf"], j["log_pb"], j["log_r"], j["valid"], j["is_exit"], lam=lam
            )[0],
            _np_subtb(d, lam), rtol=1e-5,
        )
    np.testing.assert_allclose(
        losses.flow_matching(j["log_in"], j["in_mask"], j["log_out"], j["out_mask"], j["valid"])[0],
        _np_fm(d), rtol=1e-5,
    )


def test_losses_registry_covers_all():
    assert set(losses.LOSSES) == {"tb", "db", "subtb", "fm", "logz_var"}


def test_subtb_gradients_finite_and_jit_equal():
    d = {k: jnp.asarray(v) for k, v in _random_batch(5).items()}
    f = lambda lf: losses.subtrajectory_balance(  # noqa: E731
        lf, d["log_pf"], d["log_pb"], d["log_r"], d["valid"], d["is_exit"], lam=0.9
    )[0]
    g = jax.grad(f)(d["log_flow"])
    assert bool(jnp.all(jnp.isfinite(g)))
    # flows at padded steps receive no gradient
    assert float(jnp.abs(jnp.where(d["valid"], 0.0, g)).max()) == 0.0
    np.testing.assert_allclose(jax.jit(f)(d["log_flow"]), f(d["log_flow"]), rtol=1e-6)


def test_exploration_mixture():
    logits = jnp.array([[0.0, 2.0, -1.0, 5.0]])
    mask = jnp.array([[True, True, True, False]])
    for eps, temp in ((0.0, 1.0), (0.3, 1.0), (1.0, 1.0), (0.2, 4.0)):
        p = np.exp(np.asarray(exploration_log_probs(logits, mask, eps, temp)))[0]
        z = np.exp(np.array([0.0, 2.0, -1.0]) / temp)
        ref = (1 - eps) * z / z.sum() + eps / 3
        np.testing.assert_allclose(p[:3], ref, rtol=1e-5)
        assert p[3] == 0.0
