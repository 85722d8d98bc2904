"""Flow of Reasoning on BlocksWorld: grouped replay, grouped log-partition variance, local search,
config checks, and learning thresholds (FoR keeps several correct plans; PPO reaches its goal)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.gfn.blocksworld import (
    count_solutions,
    make_blocksworld,
    make_problems,
    problems_to_objs,
)
from lfx.gfn.for_local_search import local_search
from lfx.gfn.for_objective import grouped_log_partition_variance
from lfx.gfn.for_train import FoRConfig, FoRHParams, make_train
from lfx.gfn.losses import log_partition_variance
from lfx.gfn.networks import make_policy
from lfx.gfn.replay import (
    grouped_replay_add,
    grouped_replay_init,
    grouped_replay_sample,
)
from lfx.gfn.rollout import forward_rollout


def test_grouped_replay_matches_a_python_reference():
    rng = np.random.default_rng(0)
    G, C, L = 3, 4, 2
    buf = grouped_replay_init(G, C, L)
    add = jax.jit(grouped_replay_add)
    ref = {g: [] for g in range(G)}  # ring of distinct objects per group
    count = dict.fromkeys(range(G), 0)
    for _ in range(12):
        group = rng.integers(0, G, 6)
        obj = rng.integers(0, 3, (6, L))  # few values: many duplicates within and across batches
        mask = rng.random(6) < 0.8
        buf = add(buf, jnp.asarray(group), jnp.asarray(obj, jnp.int32),
                                 jnp.zeros(6), jnp.asarray(mask))
        for g, row, m in zip(group, obj, mask):
            o = tuple(int(x) for x in row)
            if m and o not in ref[g]:
                if len(ref[g]) < C:
                    ref[g].append(o)
                else:
                    ref[g][count[g] % C] = o
                count[g] += 1
        for g in range(G):
            n = min(int(buf.count[g]), C)
            assert int(buf.count[g]) == count[g]
            assert [tuple(int(x) for x in r) for r in np.asarray(buf.obj[g, :n])] == ref[g]
    obj, _, valid = grouped_replay_sample(jax.random.key(0), buf, jnp.asarray([0, 2]), 16)
    for i, g in enumerate((0, 2)):
        assert bool(valid[i].all()) and {tuple(int(x) for x in r) for r in np.asarray(obj[i])} <= set(ref[g])
    empty = grouped_replay_init(2, 4, 2)
    assert not bool(grouped_replay_sample(jax.random.key(0), empty, jnp.asarray([1]), 3)[2].any())


def test_grouped_log_partition_variance_is_the_per_problem_loss():
    zeta = jax.random.normal(jax.random.key(0), (3, 5))
    full = grouped_log_partition_variance(zeta, jnp.ones((3, 5), bool))
    per = [log_partition_variance(-zeta[p][None], jnp.zeros((1, 5)), jnp.zeros(5), jnp.ones((1, 5), bool))[0]
           for p in range(3)]
    np.testing.assert_allclose(full, np.mean(per), rtol=1e-5)
    mask = jnp.asarray([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 1, 0, 1]], bool)
    want = np.mean([np.var(np.asarray(zeta[p])[np.asarray(mask[p])]) for p in range(3)])
    np.testing.assert_allclose(grouped_log_partition_variance(zeta, mask), want, rtol=1e-5)


def test_local_search_keeps_the_first_half_of_each_plan():
    env, ep = make_blocksworld(4, 6)
    probs = make_problems(0, 4, 6, 4)
    objs = jnp.asarray(np.repeat(problems_to_objs(probs, 6), 8, 0))
    init, apply = make_policy(env.obs_size, env.num_actions, 1, hidden=(16,), with_flow=True)
    params = init(jax.random.key(0))
    tr = jax.jit(lambda k: forward_rollout(k, params, env, ep, apply, 32, epsilon=1.0, init_obj=objs))(
        jax.random.key(1))
    ls = jax.jit(lambda k, o, n: local_search(k, env, ep, apply, params, o, n))(
        jax.random.key(2), tr.terminal_obj, tr.length)
    hist = slice(2 * 4 + 1, -1)
    moves = np.asarray(tr.length) - 1
    h0, h1 = np.asarray(tr.terminal_obj[:, hist]), np.asarray(ls.terminal_obj[:, hist])
    for b in range(32):
        k = moves[b] // 2
        np.testing.assert_array_equal(h1[b, :k], h0[b, :k])
        assert (h1[b, k:] >= 0).sum() + k == np.asarray(ls.terminal_obj[b, -1])  # depth counts the moves
    np.testing.assert_array_equal(np.asarray(ls.terminal_obj[:, 4:9]), np.asarray(objs[:, 4:9]))  # same problem


@pytest.mark.parametrize("kw, match", [
    ({"method": "ppo", "replay_capacity": 8, "replay_per_problem": 2}, "off-policy"),
    ({"method": "logz_var"}, "samples_per_problem"),
    ({"method": "tb", "local_search": True}, "replay_capacity"),
    ({"method": "a2c"}, "method"),
    ({"method": "ppo", "batch_size": 30}, "ppo_minibatches"),
])
def test_invalid_configs_raise(kw, match):
    env, ep = make_blocksworld(3, 4)
    with pytest.raises(ValueError, match=match):
        make_train(FoRConfig(**kw), env, ep, problems_to_objs(make_problems(0, 3, 2, 2), 4))


def _fit(config, hp, probs, slack):
    env, ep = make_blocksworld(3, 4)
    objs = problems_to_objs(probs, 4, slack)
    recipe = make_train(config, env, ep, objs)
    state, _ = jax.jit(recipe.train)(jax.random.key(0), hp)
    succ, distinct = recipe.evaluate(jax.random.key(1), state.params, objs, 40)
    total = np.asarray([count_solutions(p["init"], p["goal"], p["length"] + slack) for p in probs])
    return succ, distinct, total


def test_for_learns_several_correct_plans_per_problem():
    """FoR (log-partition variance + replay + local search) on three 2-step problems with slack 2:
    >= 90% of each problem's correct plans appear among 40 samples, and >= 80% of samples are correct.
    (Measured, seed 0: found fraction 1.0; without replay and local search 0.67; PPO 0.61.)"""
    probs = make_problems(0, 3, 2, 3)
    cfg = FoRConfig(method="logz_var", batch_size=24, num_iterations=200, hidden=(64,), samples_per_problem=4,
                    replay_capacity=16, replay_per_problem=4, local_search=True)
    succ, distinct, total = _fit(cfg, FoRHParams(reward_beta=2.0), probs, 2)
    assert succ.mean() >= 0.8, succ
    assert (distinct / total).mean() >= 0.9, (distinct, total)


def test_ppo_learns_to_solve_the_training_problems():
    probs = make_problems(0, 3, 4, 3)
    cfg = FoRConfig(method="ppo", batch_size=24, num_iterations=150, hidden=(64,), ppo_minibatches=2)
    succ, _, _ = _fit(cfg, FoRHParams(), probs, 0)
    assert succ.mean() >= 0.9, succ
