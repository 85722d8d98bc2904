"""Flow of Reasoning: one small policy over symbolic problems, trained as a GFlowNet or a reward maximiser.

Yu et al. 2024, "Flow of Reasoning" (arXiv:2406.05673): train the reasoning policy as a GFlowNet
(success reward 100) from a handful of problems so that it samples *diverse* correct solutions.
Here the policy is a small MLP over the symbolic state of an lfx environment whose object carries
the problem (`lfx.gfn.game24`, `lfx.gfn.blocksworld`: one network for every problem), and the
baselines are reward maximisers on the same network. Both environments are trees (the object keeps
its history), so log PB = 0 and a terminal object determines its trajectory.

Methods (`FoRConfig.method`), for a batch of problems p with G samples each (b in group p):

    tb         L = mean_b (log F(s0_b) + sum_t log PF(a_t|s_t) - log R(x_b))^2
               (log Z(p) = the network's log F(s0) head; Game24 in the paper)
    logz_var   zeta_b = log R(x_b) - sum_t log PF(a_t|s_t),  L = mean_p var_{b in p}(zeta_b)
               (log-partition-variance TB, Zhang et al. 2023, arXiv:2302.05446; FoR's BlocksWorld)
    reinforce  L = -mean_b (1[x_b solved] - baseline) sum_t log PF(a_t|s_t), moving-average baseline
    ppo        clipped surrogate (Schulman et al. 2017, arXiv:1707.06347) on r = reward_scale R(x),
               A_t = r - V(s_t) (V = the same network's scalar head), normalised over the batch:
               L = mean_t [-min(rho_t A_t, clip(rho_t, 1 +- eps) A_t) + vf_coef (V(s_t) - r)^2
                           - ent_coef H(PF(.|s_t))],  rho_t = PF(a_t|s_t) / mu_old(a_t|s_t),
               mu_old = the epsilon-mixed policy that sampled the batch (with the on-policy PF_old
               in the denominator, an explored action of tiny PF_old gets an unbounded ratio on a
               negative advantage, and the run collapsed: success 0.88 -> 0 on 2 problems)

Off-policy extras for the GFlowNet methods (FoR): a per-problem replay buffer of DISTINCT successful
terminal objects (`lfx.gfn.replay.grouped_replay_*`), `replay_per_problem` of which join each group
(replayed as backward trajectories; deterministic in a tree), and a local search: undo the second
half of every sampled trajectory and complete it uniformly at random (FoR keeps the first half of
the best plan and re-samples the rest); successes enter the buffer.

Evaluation: per problem, `n_samples` on-policy samples (no exploration): success rate, solved at
least once, and the number of DISTINCT correct trajectories.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from lfx.gfn.base import GFNState
from lfx.gfn.game24 import Game24, puzzle_obj, solvable
from lfx.gfn.networks import make_policy
from lfx.gfn.replay import (
    grouped_replay_add,
    grouped_replay_init,
    grouped_replay_sample,
)
from lfx.gfn.rollout import (
    backward_rollout,
    exploration_log_probs,
    forward_rollout,
    masked_log_softmax,
)

METHODS = ("tb", "logz_var", "reinforce", "ppo")


@dataclasses.dataclass(frozen=True)
class FoRConfig:
    method: str = "tb"  # one of METHODS
    batch_size: int = 64  # on-policy trajectories per iteration
    num_iterations: int = 2000
    hidden: tuple = (128, 128)
    samples_per_problem: int = 1  # G: lanes per problem in a batch (logz_var needs >= 2)
    replay_capacity: int = 0  # distinct successes kept per problem; 0 = no replay
    replay_per_problem: int = 0  # replayed trajectories added to each group
    local_search: bool = False
    ppo_epochs: int = 4
    ppo_minibatches: int = 4


@struct.dataclass
class FoRHParams:
    lr: float = 1e-3
    epsilon: float = 0.05
    baseline_decay: float = 0.95
    clip_eps: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    reward_scale: float = 0.01  # PPO's reward r = reward_scale * R(x)
    reward_beta: float = 1.0  # GFlowNet methods target R(x)^beta (FoR anneals a reward temperature)


def _check(config: FoRConfig):
    if config.method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {config.method!r}.")
    if config.batch_size % config.samples_per_problem:
        raise ValueError(f"batch_size ({config.batch_size}) must be a multiple of samples_per_problem "
                         f"({config.samples_per_problem}).")
    if config.method == "logz_var" and config.samples_per_problem < 2:
        raise ValueError("logz_var needs samples_per_problem >= 2 (it is a variance within a problem).")
    replay = config.replay_capacity > 0 or config.replay_per_problem > 0 or config.local_search
    if replay and config.method not in ("tb", "logz_var"):
        raise ValueError(f"replay / local_search are off-policy: use method 'tb' or 'logz_var', not "
                         f"{config.method!r} (or set replay_capacity=replay_per_problem=0, local_search=False).")
    if replay and (config.replay_capacity <= 0 or config.replay_per_problem <= 0):
        raise ValueError("replay needs replay_capacity > 0 and replay_per_problem > 0 "
                         "(local_search writes into the replay buffer).")
    if config.method == "ppo" and (config.batch_size % config.ppo_minibatches):
        raise ValueError(f"batch_size ({config.batch_size}) must be a multiple of ppo_minibatches "
                         f"({config.ppo_minibatches}).")


def _states(obj):
    n = obj.shape[0]
    return GFNState(time=jnp.zeros((n,), jnp.int32), obj=obj, done=jnp.zeros((n,), bool))


def grouped_log_partition_variance(zeta, mask):
    """mean_p of the variance of zeta over the kept entries of group p.

    zeta: [P, n] log R(x) + sum log PB - sum log PF per trajectory, grouped by problem; mask: [P, n]
    bool, each row with at least one True. With a full mask this is `lfx.gfn.losses.
    log_partition_variance` applied to each row, averaged over rows.
    """
    n = jnp.sum(mask, 1, keepdims=True)
    mean = jnp.sum(jnp.where(mask, zeta, 0.0), 1, keepdims=True) / n
    return jnp.mean(jnp.sum(jnp.where(mask, (zeta - mean) ** 2, 0.0), 1) / n[:, 0])


def local_search(key, env, env_params, policy_apply, params, terminal_obj, length):
    """Destroy-and-rebuild: undo the last ceil(n/2) of each trajectory's n moves, then complete it
    uniformly at random. terminal_obj: [B, L]; length: [B] (exit included). Returns Trajectories."""
    undo = (length - 1) - (length - 1) // 2
    back = jax.vmap(env.apply_backward, in_axes=(0, None, None))

    def body(i, s):
        p = back(s, jnp.zeros((), jnp.int32), env_params)
        return jax.tree.map(lambda a, b: jnp.where((i < undo).reshape((-1,) + (1,) * (a.ndim - 1)), a, b), p, s)

    s = jax.lax.fori_loop(0, env.max_steps, body, _states(terminal_obj))
    return forward_rollout(key, jax.lax.stop_gradient(params), env, env_params, policy_apply,
                           terminal_obj.shape[0], epsilon=1.0, init_obj=s.obj)


def make_reasoning_train(config: FoRConfig, env, env_params, start_objs: np.ndarray):
    """`train(key, hparams) -> (params, metrics)` over the problems `start_objs` ([P, L]);
    metrics["train/success"] is [num_iterations]. `env` needs `is_solved(obj)`."""
    _check(config)
    ep = env_params
    init, apply = make_policy(env.obs_size, env.num_actions, env.num_backward_actions,
                              hidden=config.hidden, with_flow=True)
    objs = jnp.asarray(start_objs, jnp.int32)
    P, B, G = objs.shape[0], config.batch_size, config.samples_per_problem
    Pb, R = B // G, config.replay_per_problem
    use_replay = config.replay_capacity > 0
    solved_fn = jax.vmap(env.is_solved)

    def sample(k):
        """k -> (problem ids [Pb], lane problem ids [B])."""
        ids = jax.random.randint(k, (Pb,), 0, P)
        return ids, jnp.repeat(ids, G)

    def gfn_loss(params, k, buf, hp):
        k1, k2 = jax.random.split(k)
        ids, lanes = sample(k1)
        tr = forward_rollout(k2, params, env, ep, apply, B, epsilon=hp.epsilon, init_obj=objs[lanes])
        solved = solved_fn(tr.terminal_obj).astype(jnp.float32)
        logz, log_r = tr.log_flow[0], tr.log_reward
        net = jnp.sum(tr.log_pf, 0) - jnp.sum(tr.log_pb, 0)
        mask = jnp.ones((B,), bool)
        if use_replay:
            k3, k4 = jax.random.split(jax.random.fold_in(k, 1))
            robj, _, rvalid = grouped_replay_sample(k3, buf, ids, R)
            rtr = backward_rollout(k4, params, env, ep, apply, robj.reshape(Pb * R, -1))
            cat = lambda a, b: jnp.concatenate([a.reshape(Pb, G), b.reshape(Pb, R)], 1)
            logz = cat(logz, rtr.log_flow[0])
            log_r = cat(log_r, rtr.log_reward)
            net = cat(net, jnp.sum(rtr.log_pf, 0) - jnp.sum(rtr.log_pb, 0))
            mask = cat(mask, rvalid)
        else:
            logz, log_r, net, mask = (a.reshape(Pb, G) for a in (logz, log_r, net, mask))
        log_r = hp.reward_beta * log_r
        if config.method == "tb":
            delta = jnp.where(mask, logz + net - log_r, 0.0)
            loss = jnp.sum(delta**2) / jnp.sum(mask)
        else:
            loss = grouped_log_partition_variance(log_r - net, mask)
        return loss, (solved.mean(), tr, lanes, solved)

    def reinforce_loss(params, k, baseline, hp):
        k1, k2 = jax.random.split(k)
        _, lanes = sample(k1)
        tr = forward_rollout(k2, params, env, ep, apply, B, epsilon=hp.epsilon, init_obj=objs[lanes])
        solved = solved_fn(tr.terminal_obj).astype(jnp.float32)
        return -jnp.mean((solved - baseline) * jnp.sum(tr.log_pf, 0)), solved.mean()

    def policy_on(params, obj):
        """Teacher-forced pass over stored states obj [T, b, L]: (PolicyOutput, masks), flat [T b]."""
        st = _states(obj.reshape(-1, obj.shape[-1]))
        out = apply(params, jax.vmap(env.get_obs, in_axes=(0, None))(st, ep))
        return out, jax.vmap(env.forward_mask, in_axes=(0, None))(st, ep)

    def behaviour_log_probs(params, obj, act, epsilon):
        """[T, B] log mu(a_t|s_t) of the epsilon-mixed sampling policy that took the actions."""
        out, fmask = policy_on(params, obj)
        lp = exploration_log_probs(out.fwd_logits, fmask, epsilon, 1.0)
        return jnp.take_along_axis(lp, act.reshape(-1, 1), -1)[:, 0].reshape(act.shape)

    def ppo_minibatch_loss(params, mb, hp):
        obj, act, valid, old_logp, adv, ret = mb  # [T, b, ...]
        out, fmask = policy_on(params, obj)
        logp_all = masked_log_softmax(out.fwd_logits, fmask)
        logp = jnp.take_along_axis(logp_all, act.reshape(-1, 1), -1)[:, 0].reshape(act.shape)
        ratio = jnp.exp(logp - old_logp)
        pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - hp.clip_eps, 1 + hp.clip_eps) * adv)
        v = out.log_flow.reshape(act.shape)
        ent = -jnp.sum(jnp.where(fmask, jnp.exp(logp_all) * logp_all, 0.0), -1).reshape(act.shape)
        per = pg + hp.vf_coef * (v - ret) ** 2 - hp.ent_coef * ent
        return jnp.sum(jnp.where(valid, per, 0.0)) / jnp.maximum(valid.sum(), 1)

    def train(key, hp: FoRHParams):
        tx = optax.inject_hyperparams(optax.adam)(learning_rate=hp.lr)
        k0, k_run = jax.random.split(key)
        params = init(k0)
        buf = grouped_replay_init(P, config.replay_capacity, env.obj_size) if use_replay else None

        def step_gfn(carry, k):
            params, opt, baseline, buf = carry
            (loss, (succ, tr, lanes, solved)), g = jax.value_and_grad(gfn_loss, has_aux=True)(params, k, buf, hp)
            up, opt = tx.update(g, opt, params)
            params = optax.apply_updates(params, up)
            m = {"train/loss": loss, "train/success": succ}
            if use_replay:
                tobj = jax.lax.stop_gradient(tr.terminal_obj)
                buf = grouped_replay_add(buf, lanes, tobj, tr.log_reward, solved > 0)
                if config.local_search:
                    ls = local_search(jax.random.fold_in(k, 2), env, ep, apply, params, tobj, tr.length)
                    ls_ok = solved_fn(ls.terminal_obj)
                    buf = grouped_replay_add(buf, lanes, ls.terminal_obj, ls.log_reward, ls_ok)
                    m["train/local_search_success"] = ls_ok.mean()
                m["replay/distinct_per_problem"] = jnp.minimum(buf.count, config.replay_capacity).mean()
            return (params, opt, baseline, buf), m

        def step_reinforce(carry, k):
            params, opt, baseline, buf = carry
            (loss, succ), g = jax.value_and_grad(reinforce_loss, has_aux=True)(params, k, baseline, hp)
            up, opt = tx.update(g, opt, params)
            params = optax.apply_updates(params, up)
            baseline = hp.baseline_decay * baseline + (1 - hp.baseline_decay) * succ
            return (params, opt, baseline, buf), {"train/loss": loss, "train/success": succ}

        def step_ppo(carry, k):
            params, opt, baseline, buf = carry
            k1, k2, k3 = jax.random.split(k, 3)
            _, lanes = sample(k1)
            tr = forward_rollout(k2, params, env, ep, apply, B, epsilon=hp.epsilon, init_obj=objs[lanes])
            tr = jax.lax.stop_gradient(tr)
            behaviour_logp = behaviour_log_probs(params, tr.obj, tr.actions, hp.epsilon)
            solved = solved_fn(tr.terminal_obj).astype(jnp.float32)
            ret = jnp.broadcast_to(hp.reward_scale * jnp.exp(tr.log_reward)[None], tr.valid.shape)
            adv = ret - tr.log_flow
            n = jnp.maximum(tr.valid.sum(), 1)
            mu = jnp.sum(jnp.where(tr.valid, adv, 0.0)) / n
            sd = jnp.sqrt(jnp.sum(jnp.where(tr.valid, (adv - mu) ** 2, 0.0)) / n)
            adv = (adv - mu) / (sd + 1e-8)
            data = (tr.obj, tr.actions, tr.valid, behaviour_logp, adv, ret)
            M = config.ppo_minibatches

            def epoch(c, ke):
                perm = jax.random.permutation(ke, B).reshape(M, B // M)

                def mb_step(c, idx):
                    params, opt = c
                    mb = jax.tree.map(lambda a: a[:, idx], data)
                    loss, g = jax.value_and_grad(ppo_minibatch_loss)(params, mb, hp)
                    up, opt = tx.update(g, opt, params)
                    return (optax.apply_updates(params, up), opt), loss

                return jax.lax.scan(mb_step, c, perm)

            (params, opt), losses = jax.lax.scan(epoch, (params, opt), jax.random.split(k3, config.ppo_epochs))
            return (params, opt, baseline, buf), {"train/loss": losses.mean(), "train/success": solved.mean()}

        step = {"tb": step_gfn, "logz_var": step_gfn, "reinforce": step_reinforce, "ppo": step_ppo}[config.method]
        keys = jax.random.split(k_run, config.num_iterations)
        carry = (params, tx.init(params), jnp.float32(0.0), buf)
        (params, _, _, _), m = jax.lax.scan(step, carry, keys)
        return params, m

    def evaluate(key, params, problem_objs: np.ndarray, n_samples: int = 64):
        """Per problem ([P, L] start objects): (success rate [P], distinct correct trajectories [P])."""
        pobj = jnp.asarray(np.repeat(np.asarray(problem_objs), n_samples, 0))
        tr = jax.jit(lambda k, p: forward_rollout(k, p, env, ep, apply, pobj.shape[0], init_obj=pobj))(
            key, params)
        n = len(problem_objs)
        solved = np.asarray(solved_fn(tr.terminal_obj)).reshape(n, n_samples)
        term = np.asarray(tr.terminal_obj).reshape(n, n_samples, -1)
        distinct = [len({tuple(x) for x, ok in zip(term[i], solved[i]) if ok}) for i in range(n)]
        return solved.mean(1), np.asarray(distinct)

    train.evaluate = evaluate
    train.env = env
    return train


COMPARED_METHODS = ("for", "for_no_replay", "tb", "ppo", "reinforce")


def method_setup(c, method: str) -> tuple[FoRConfig, FoRHParams]:
    """(FoRConfig, FoRHParams) of a named method, as the FoR experiments compare them.

    "for": the FoR recipe (log-partition-variance TB, `for_samples_per_problem` samples per problem,
    a buffer of distinct successes replayed each batch, local search, reward R^`for_reward_beta`);
    "for_no_replay": the same loss without buffer and local search; "tb": per-problem log Z TB;
    "ppo": clipped surrogate; "reinforce": moving-average baseline. `c` is the experiment's config
    (batch_size, num_iterations, hidden, lr, epsilon, baseline_decay, clip_eps, vf_coef, ent_coef,
    ppo_epochs, ppo_minibatches and the for_* fields).
    """
    base = {"batch_size": c.batch_size, "num_iterations": c.num_iterations, "hidden": tuple(c.hidden)}
    hp = FoRHParams(lr=c.lr, epsilon=c.epsilon, baseline_decay=c.baseline_decay, clip_eps=c.clip_eps,
                    vf_coef=c.vf_coef, ent_coef=c.ent_coef)
    if method == "for":
        cfg = FoRConfig(method="logz_var", samples_per_problem=c.for_samples_per_problem,
                        replay_capacity=c.for_replay_capacity, replay_per_problem=c.for_replay_per_problem,
                        local_search=True, **base)
        return cfg, hp.replace(reward_beta=c.for_reward_beta)
    if method == "for_no_replay":
        cfg = FoRConfig(method="logz_var", samples_per_problem=c.for_samples_per_problem, **base)
        return cfg, hp.replace(reward_beta=c.for_reward_beta)
    if method in ("tb", "reinforce"):
        return FoRConfig(method=method, **base), hp
    if method == "ppo":
        return FoRConfig(method="ppo", ppo_epochs=c.ppo_epochs, ppo_minibatches=c.ppo_minibatches, **base), hp
    raise ValueError(f"Unknown method {method!r}: use one of {COMPARED_METHODS}.")


# ---- Game24 ----

def make_puzzles(seed: int, n: int, exclude=()) -> np.ndarray:
    """[n, 4] distinct solvable puzzles (numbers 1..13, sorted), drawn with `seed`."""
    rng = np.random.default_rng(seed)
    seen = {tuple(sorted(p)) for p in exclude}
    out = []
    while len(out) < n:
        p = tuple(sorted(int(x) for x in rng.integers(1, 14, size=4)))
        if p not in seen and solvable(p):
            seen.add(p)
            out.append(p)
    return np.asarray(out, np.int32)


def make_for_train(config: FoRConfig, train_puzzles: np.ndarray):
    """Game24: `make_reasoning_train` over the puzzles ([P, 4]); `evaluate` takes puzzles too."""
    _check(config)
    env = Game24(tuple(train_puzzles[0]))
    to_objs = lambda ps: np.stack([puzzle_obj(p) for p in ps])
    train = make_reasoning_train(config, env, env.default_params, to_objs(train_puzzles))
    evaluate = train.evaluate
    train.evaluate = lambda key, params, puzzles, n_samples=64: evaluate(key, params, to_objs(puzzles), n_samples)
    return train

