"""OC-GFN adaptation: exact marginal over outcomes, predictor loss identity, short predictor run.

The frozen OC-GFN here is EXACT: conditional flows F(s|y), PF(.|s, y) for R(x|y) = 1[x = y] and a
uniform PB, computed by a NumPy loop over the enumerated DAG and played by table lookup. That
isolates the adaptation step from pre-training error.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.gfn.base import GFNEnv
from lfx.gfn.bitseq import make_bitseq
from lfx.gfn.hypergrid import make_hypergrid
from lfx.gfn.metrics import build_dag, terminal_distribution
from lfx.gfn.networks import PolicyOutput
from lfx.gfn.ocgfn_adapt import (
    AdaptConfig,
    AdaptHParams,
    direct_conversion,
    edge_outcome_mask,
    make_train,
    outcome_targets,
    predictor_loss,
    q_log_prob,
)
from lfx.gfn.rollout import NEG


def exact_conditional_flows(dag):
    """NumPy loops: for every terminal y (rows of `ys`), F[y, s] and edge flows E[y, s, a].

    F(s|y) = 1[s = y] + sum_{s -> c} F(c|y) / n_parents(c);  E(s, a|y) = F(c|y) / n_parents(c),
    E(s, exit|y) = 1[s = y]. States are stored level by level, so a reverse sweep is topological.
    """
    child, fmask = np.asarray(dag.child), np.asarray(dag.fwd_mask)
    S, A = fmask.shape
    n_par = np.zeros(S)
    for s in range(S):
        for a in range(A - 1):
            if fmask[s, a]:
                n_par[child[s, a]] += 1
    ys = np.nonzero(fmask[:, -1])[0]
    F = np.zeros((len(ys), S))
    E = np.zeros((len(ys), S, A))
    for j, y in enumerate(ys):
        for s in range(S - 1, -1, -1):
            if fmask[s, -1]:
                E[j, s, -1] = float(s == y)
            for a in range(A - 1):
                if fmask[s, a]:
                    E[j, s, a] = F[j, child[s, a]] / n_par[child[s, a]]
            F[j, s] = E[j, s].sum()
    return ys, F, E


def table_conditional_policy(dag, F, E, ys):
    """`cond_apply(params, obs [B, O], y_obs [B, O])` playing the exact conditional flow."""
    all_obs = dag.obs
    with np.errstate(divide="ignore", invalid="ignore"):
        log_pf = np.where(E > 0, np.log(E) - np.log(F)[..., None], NEG)
        log_f = np.where(F > 0, np.log(F), NEG)
    y_obs = all_obs[jnp.asarray(ys)]
    lpf, lf = jnp.asarray(log_pf, jnp.float32), jnp.asarray(log_f, jnp.float32)

    def apply(params, obs, yo):
        s = jnp.argmax(obs @ all_obs.T, -1)
        y = jnp.argmax(yo @ y_obs.T, -1)
        return PolicyOutput(lpf[y, s], jnp.zeros((obs.shape[0], 1)), lf[y, s])

    return apply


def _setup(env, ep):
    dag = build_dag(env, ep)
    ys, F, E = exact_conditional_flows(dag)
    log_r_y = np.asarray(dag.log_r)[ys]
    return dag, ys, F, E, log_r_y


ENVS = {"hypergrid_2x4": lambda: make_hypergrid(2, 4), "bitseq_4_2": lambda: make_bitseq(4, 2, num_modes=2)}


@pytest.mark.parametrize("name", sorted(ENVS))
def test_exact_marginal_over_outcomes_samples_reward_proportionally(name):
    env, ep = ENVS[name]()
    dag, ys, F, E, log_r_y = _setup(env, ep)
    apply = table_conditional_policy(dag, F, E, ys)
    log_n, log_pf = direct_conversion(dag, env, ep, apply, None, jnp.asarray(dag.states[ys]), jnp.asarray(log_r_y))
    # NumPy reference of the numerator: N*(s, a) = sum_y R(y) E(s, a | y).
    n_ref = np.einsum("y,ysa->sa", np.exp(log_r_y), E)
    ok = np.asarray(dag.fwd_mask)
    np.testing.assert_allclose(np.exp(np.asarray(log_n))[ok], n_ref[ok], rtol=1e-4, atol=1e-7)
    # Identity: the converted policy samples x with probability R(x) / Z, and N*(s0, .) sums to Z.
    q = terminal_distribution(dag, log_pf)
    np.testing.assert_allclose(np.asarray(q), np.asarray(dag.target), atol=2e-5)
    np.testing.assert_allclose(float(jax.nn.logsumexp(log_n[dag.s0])), dag.log_z_true, atol=1e-4)


def test_predictor_loss_is_zero_at_the_exact_marginal_and_posterior():
    env, ep = make_hypergrid(2, 4)
    dag, ys, F, E, log_r_y = _setup(env, ep)
    apply = table_conditional_policy(dag, F, E, ys)
    n_star = np.einsum("y,ysa->sa", np.exp(log_r_y), E)  # [S, A]
    rng = np.random.default_rng(0)
    fm = np.asarray(dag.fwd_mask)
    edges = np.argwhere(fm)
    pick = edges[rng.integers(len(edges), size=24)]
    s_idx, a = pick[:, 0], pick[:, 1]
    # K = 3 outcomes per edge drawn from the exact posterior Q*(y|s,a) = R(y) E(s,a|y) / N*(s,a).
    post = np.exp(log_r_y)[:, None] * E[:, s_idx, a] / n_star[s_idx, a]  # [Y, M]
    yj = np.stack([rng.choice(len(ys), size=3, p=post[:, m]) for m in range(len(s_idx))])  # [M, K]
    s_obj = jnp.asarray(dag.states[s_idx])
    y = jnp.asarray(dag.states[ys][yj])
    target = outcome_targets(None, env, ep, apply, s_obj, jnp.asarray(a), y)
    log_q_star = jnp.asarray(np.log(post[yj, np.arange(len(s_idx))[:, None]]), jnp.float32)
    log_n_star = jnp.asarray(np.log(n_star[s_idx, a]), jnp.float32)
    mask = jnp.ones(len(s_idx), bool)
    loss, _ = predictor_loss(log_n_star, log_q_star, target, mask)
    assert float(loss) < 1e-8
    # Every sampled outcome lies in the support the predictor's Q is restricted to.
    slot = np.asarray(edge_outcome_mask(env, ep, s_obj, jnp.asarray(a)))
    assert np.all(np.take_along_axis(slot[:, None], np.asarray(y)[..., None], -1))
    # A uniform Q over that support is not the posterior: the loss sees it (N exact, Q wrong).
    zero_logits = lambda p, o, act, pre: jnp.zeros((*pre.shape[:-1], 4))
    log_q_unif = q_log_prob(zero_logits, None, s_obj, jnp.asarray(a), y, jnp.asarray(slot))
    loss_u, _ = predictor_loss(log_n_star, log_q_unif, target, mask)
    assert float(loss_u) > 0.05
    # ... and so does a wrong numerator with the exact Q: loss = shift^2.
    loss_n, _ = predictor_loss(log_n_star + 0.3, log_q_star, target, mask)
    np.testing.assert_allclose(float(loss_n), 0.09, rtol=1e-3)


def test_short_predictor_run_closes_the_gap_to_the_exact_marginal():
    # Hypergrid 2x4 (R0 1e-3, corners 0.5), exact frozen OC-GFN; batch 16, K 4, MLP 64-64, seed 0.
    env, ep = make_hypergrid(2, 4)
    dag, ys, F, E, _ = _setup(env, ep)
    apply = table_conditional_policy(dag, F, E, ys)
    cfg = AdaptConfig(batch_size=16, num_iterations=400, hidden=(64, 64), num_outcomes=4, eval_every=399)
    adapt = make_train(cfg, env, ep, apply, dag)
    _, m = jax.jit(adapt.train)(jax.random.key(0), AdaptHParams(lr=3e-3), None)
    tv = np.asarray(m["eval/tv"])
    tv = tv[~np.isnan(tv)]
    assert tv[0] > 0.3, tv  # untrained sampler: far from R / Z
    assert tv[-1] < 0.05, tv


def test_invalid_adaptation_settings_are_rejected_early():
    env, ep = make_hypergrid(2, 4)
    with pytest.raises(ValueError, match="num_outcomes"):
        make_train(AdaptConfig(num_outcomes=0), env, ep, None)
    with pytest.raises(ValueError, match="needs `dag`"):
        make_train(AdaptConfig(eval_every=10), env, ep, None)

    class NoStructure(GFNEnv):
        vocab, obj_size = 2, 1

        def initial_obj(self):
            return jnp.zeros((1,), jnp.int32)

    with pytest.raises(ValueError, match="reachability"):
        make_train(AdaptConfig(), NoStructure(), None, None)
