"""Flow of Reasoning recipe: one small policy over symbolic problems, a GFlowNet or a reward maximiser.

Yu et al. 2024, "Flow of Reasoning" (arXiv:2406.05673): train the reasoning policy as a GFlowNet
(success reward 100) from a handful of problems so that it samples *diverse* correct solutions.
Here the policy is a small MLP over the symbolic state of an lfx environment whose object carries
the problem (`lfx.gfn.game24`, `lfx.gfn.blocksworld`: one network for every problem), and the
baselines are reward maximisers on the same network. Both environments are trees (the object keeps
its history), so log PB = 0 and a terminal object determines its trajectory.

Methods (`FoRConfig.method`), for a batch of problems p with G samples each: "tb" and "logz_var"
(`lfx.gfn.for_objective`), "reinforce" and "ppo" (`lfx.gfn.for_baselines`).

Off-policy extras for the GFlowNet methods (FoR): a per-problem replay buffer of DISTINCT successful
terminal objects (`lfx.gfn.replay.grouped_replay_*`), `replay_per_problem` of which join each group
(replayed as backward trajectories; deterministic in a tree), and a local search
(`lfx.gfn.for_local_search`), `local_search`:

    "best"   FoR's public code: per problem, `local_search_restarts` (16) re-samplings of the second
             half of the group's best trajectory; those whose log R beats the best's join the
             group in the loss (as backward trajectories, so their log PF is the current policy's)
             and, when solved, the buffer
    "every"  lfx's first version: every sampled trajectory re-sampled once after the update; its
             successes enter the buffer only
    "none"

Group of problem p in the loss: its G on-policy samples, then the accepted local-search
trajectories ("best"), then `replay_per_problem` replayed ones, with a mask for the empty slots.

Log Z is per problem: "tb" uses the network's log F(s0) head, which sees the problem, and
"logz_var" needs no log Z (it is the within-problem mean of log R - log PF). FoR's public code
learns one scalar log Z shared by all problems (Game24/lightning_module.py: `tb_loss(..., logz=
self.logZ)`). Each problem has its own partition function Z(p) = sum_x R(x|p) (Game24: 100 x the
number of solutions + 0.001 x the rest), so one scalar cannot satisfy trajectory balance for two
problems with different Z(p): the loss keeps a floor of the spread of log Z(p) over problems and its
gradient pulls each policy off R/Z(p). A per-problem log Z has the exact optimum PF = R(.|p)/Z(p) for
every problem, so it is kept on purpose (the conditional-GFlowNet form).

Evaluation (`FoRRecipe.evaluate`, host side): per problem, `n_samples` on-policy samples (no
exploration): success rate, solved at least once, and the number of DISTINCT correct trajectories.

`make_train(config, env, env_params, start_objs) -> FoRRecipe` (`init(key, hp)`, `run(state, hp, *,
num_updates)`, `train(key, hp)`); iteration i uses `lfx.gfn.recipe.iteration_key(key, i)`, so a run
cut into chunks equals one scan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from lfx.gfn.for_baselines import ppo_update, reinforce_update
from lfx.gfn.for_local_search import PROPOSALS, improve_best, local_search, start_states
from lfx.gfn.for_objective import GFN_METHODS, grouped_gfn_loss
from lfx.gfn.networks import make_policy
from lfx.gfn.recipe import NON_NEGATIVE, POSITIVE, UNIT, check_hparams, iteration_key
from lfx.gfn.replay import grouped_replay_add, grouped_replay_init, grouped_replay_sample
from lfx.gfn.rollout import backward_rollout, forward_rollout

METHODS = ("tb", "logz_var", "reinforce", "ppo")
LOCAL_SEARCH = ("none", "every", "best")  # see the module docstring


@dataclasses.dataclass(frozen=True)
class FoRConfig:
    method: str = "tb"  # one of METHODS
    batch_size: int = 64  # on-policy trajectories per iteration
    num_iterations: int = 2000
    hidden: tuple = (128, 128)
    samples_per_problem: int = 1  # G: lanes per problem in a batch (logz_var needs >= 2)
    replay_capacity: int = 0  # distinct successes kept per problem; 0 = no replay
    replay_per_problem: int = 0  # replayed trajectories added to each group
    local_search: str = "none"  # one of LOCAL_SEARCH; "best" = FoR's public code
    local_search_restarts: int = 16  # "best": re-samplings of each problem's best trajectory
    local_search_proposal: str = "uniform"  # completion: "uniform" (FoR's code) or "policy"
    ppo_epochs: int = 4
    ppo_minibatches: int = 4

    def validate(self) -> None:
        """Raises ValueError, saying what to change, for a configuration that cannot run."""
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {self.method!r}.")
        for name in ("batch_size", "num_iterations", "samples_per_problem", "ppo_epochs",
                     "ppo_minibatches"):
            if getattr(self, name) < 1:
                raise ValueError(f"FoRConfig.{name} must be >= 1, got {getattr(self, name)}.")
        if self.batch_size % self.samples_per_problem:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of samples_per_problem "
                             f"({self.samples_per_problem}).")
        if self.method == "logz_var" and self.samples_per_problem < 2:
            raise ValueError("logz_var needs samples_per_problem >= 2 (it is a variance within a problem).")
        if self.local_search not in LOCAL_SEARCH:
            raise ValueError(f"local_search must be one of {LOCAL_SEARCH} ('best' = FoR's code, 'every' = "
                             f"lfx's first version); got {self.local_search!r}.")
        if self.local_search_proposal not in PROPOSALS:
            raise ValueError(f"local_search_proposal must be one of {PROPOSALS}; got "
                             f"{self.local_search_proposal!r}.")
        if self.local_search_restarts < 1:
            raise ValueError(f"FoRConfig.local_search_restarts must be >= 1, got {self.local_search_restarts}.")
        replay = self.replay_capacity > 0 or self.replay_per_problem > 0 or self.local_search != "none"
        if replay and self.method not in GFN_METHODS:
            raise ValueError(f"replay / local_search are off-policy: use method 'tb' or 'logz_var', not "
                             f"{self.method!r} (or set replay_capacity=replay_per_problem=0, "
                             f"local_search='none').")
        if replay and (self.replay_capacity <= 0 or self.replay_per_problem <= 0):
            raise ValueError("replay needs replay_capacity > 0 and replay_per_problem > 0 "
                             "(local_search writes into the replay buffer).")
        if self.method == "ppo" and (self.batch_size % self.ppo_minibatches):
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of ppo_minibatches "
                             f"({self.ppo_minibatches}).")


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

    def validate(self) -> None:
        check_hparams(self, {"lr": POSITIVE, "epsilon": UNIT, "baseline_decay": UNIT,
                             "clip_eps": POSITIVE, "vf_coef": NON_NEGATIVE,
                             "ent_coef": NON_NEGATIVE, "reward_scale": POSITIVE,
                             "reward_beta": POSITIVE})


@struct.dataclass
class FoRState:
    """baseline: REINFORCE's moving average; buf: the grouped replay buffer (None without replay)."""

    params: Any
    opt_state: Any
    baseline: jax.Array
    buf: Any
    step: jax.Array
    key: jax.Array


class FoRRecipe(NamedTuple):
    """`train(key, hp) = run(init(key, hp), hp, num_updates=num_updates)`; `evaluate(key, params,
    problem_objs [P, L], n_samples) -> (success rate [P], distinct correct trajectories [P])`
    (host side, jits its own sampler)."""

    config: FoRConfig
    num_updates: int
    env: Any
    env_params: Any
    apply: Callable
    init: Callable[..., FoRState]
    run: Callable[..., tuple[FoRState, dict[str, jax.Array]]]
    train: Callable[..., tuple[FoRState, dict[str, jax.Array]]]
    evaluate: Callable


def make_train(config: FoRConfig, env, env_params, start_objs: np.ndarray) -> FoRRecipe:
    """The FoR recipe over the problems `start_objs` ([P, L]); metrics["train/success"] is
    [num_updates]. `env` needs `is_solved(obj)`. Raises ValueError before compiling."""
    config.validate()
    ep = env_params
    init_net, apply = make_policy(env.obs_size, env.num_actions, env.num_backward_actions,
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

    def rollout_fn(hp):
        def rollout(params, k_problems, k_sample):
            _, lanes = sample(k_problems)
            tr = forward_rollout(k_sample, params, env, ep, apply, B, epsilon=hp.epsilon,
                                 init_obj=objs[lanes])
            return tr, solved_fn(tr.terminal_obj).astype(jnp.float32)

        return rollout

    def policy_on(params, obj):
        """Teacher-forced pass over stored states obj [T, b, L]: (PolicyOutput, masks), flat [T b]."""
        st = start_states(obj.reshape(-1, obj.shape[-1]))
        out = apply(params, jax.vmap(env.get_obs, in_axes=(0, None))(st, ep))
        return out, jax.vmap(env.forward_mask, in_axes=(0, None))(st, ep)

    K = config.local_search_restarts

    def ls_epsilon(hp):
        return 1.0 if config.local_search_proposal == "uniform" else hp.epsilon

    def as_group(tr_, n):
        """(log Z, log R, net log PF - log PB) of a trajectory batch, [Pb, n]."""
        return (tr_.log_flow[0].reshape(Pb, n), tr_.log_reward.reshape(Pb, n),
                (jnp.sum(tr_.log_pf, 0) - jnp.sum(tr_.log_pb, 0)).reshape(Pb, n))

    def gfn_loss(params, k, buf, hp):
        k1, k2 = jax.random.split(k)
        ids, lanes = sample(k1)
        tr = forward_rollout(k2, params, env, ep, apply, B, epsilon=hp.epsilon, init_obj=objs[lanes])
        solved = solved_fn(tr.terminal_obj).astype(jnp.float32)
        parts = [(*as_group(tr, G), jnp.ones((Pb, G), bool))]
        ls = accepted = None
        if config.local_search == "best":
            k5, k6 = jax.random.split(jax.random.fold_in(k, 3))
            sg = jax.lax.stop_gradient
            ls, accepted = improve_best(k5, env, ep, apply, params, sg(tr.terminal_obj).reshape(Pb, G, -1),
                                        sg(tr.log_reward).reshape(Pb, G), tr.length.reshape(Pb, G),
                                        restarts=K, epsilon=ls_epsilon(hp))
            ltr = backward_rollout(k6, params, env, ep, apply, ls.terminal_obj)
            parts.append((*as_group(ltr, K), accepted))
        if use_replay:
            k3, k4 = jax.random.split(jax.random.fold_in(k, 1))
            robj, _, rvalid = grouped_replay_sample(k3, buf, ids, R)
            rtr = backward_rollout(k4, params, env, ep, apply, robj.reshape(Pb * R, -1))
            parts.append((*as_group(rtr, R), rvalid))
        logz, log_r, net, mask = (jnp.concatenate(a, 1) for a in zip(*parts, strict=True))
        loss = grouped_gfn_loss(logz, net, hp.reward_beta * log_r, mask, method=config.method)
        return loss, (solved.mean(), tr, lanes, solved, (ls, accepted))

    def step_gfn(state, k, hp, tx):
        params, opt, buf = state.params, state.opt_state, state.buf
        (loss, (succ, tr, lanes, solved, (ls, accepted))), g = jax.value_and_grad(gfn_loss, has_aux=True)(
            params, k, buf, hp)
        up, opt = tx.update(g, opt, params)
        params = optax.apply_updates(params, up)
        m = {"train/loss": loss, "train/success": succ}
        if use_replay:
            tobj = jax.lax.stop_gradient(tr.terminal_obj)
            buf = grouped_replay_add(buf, lanes, tobj, tr.log_reward, solved > 0)
            if config.local_search == "every":
                ls = local_search(jax.random.fold_in(k, 2), env, ep, apply, params, tobj, tr.length,
                                  epsilon=ls_epsilon(hp))
                ls_ok = solved_fn(ls.terminal_obj)
                buf = grouped_replay_add(buf, lanes, ls.terminal_obj, ls.log_reward, ls_ok)
                m["train/local_search_success"] = ls_ok.mean()
            elif config.local_search == "best":
                ls_ok = solved_fn(ls.terminal_obj)
                accepted = accepted.reshape(-1)
                buf = grouped_replay_add(buf, jnp.repeat(lanes[::G], K), ls.terminal_obj, ls.log_reward,
                                         ls_ok & accepted)
                m["train/local_search_success"] = ls_ok.mean()
                m["train/local_search_accepted"] = accepted.mean()
            m["replay/distinct_per_problem"] = jnp.minimum(buf.count, config.replay_capacity).mean()
        return state.replace(params=params, opt_state=opt, buf=buf), m

    def step_reinforce(state, k, hp, tx):
        params, opt, baseline, m = reinforce_update(state.params, state.opt_state, state.baseline, k,
                                                    hp, tx=tx, rollout=rollout_fn(hp))
        return state.replace(params=params, opt_state=opt, baseline=baseline), m

    def step_ppo(state, k, hp, tx):
        params, opt, m = ppo_update(state.params, state.opt_state, k, hp, tx=tx,
                                    rollout=rollout_fn(hp), policy_on=policy_on, batch_size=B,
                                    epochs=config.ppo_epochs, minibatches=config.ppo_minibatches)
        return state.replace(params=params, opt_state=opt), m

    step = {"tb": step_gfn, "logz_var": step_gfn, "reinforce": step_reinforce,
            "ppo": step_ppo}[config.method]

    def optimizer(hp):
        return optax.inject_hyperparams(optax.adam)(learning_rate=hp.lr)

    def init(key, hp: FoRHParams) -> FoRState:
        k0, k_run = jax.random.split(key)
        params = init_net(k0)
        buf = grouped_replay_init(P, config.replay_capacity, env.obj_size) if use_replay else None
        return FoRState(params, optimizer(hp).init(params), jnp.float32(0.0), buf,
                        jnp.zeros((), jnp.int32), k_run)

    def run(state: FoRState, hp: FoRHParams, *, num_updates: int):
        tx = optimizer(hp)

        def body(state, _):
            new, m = step(state, iteration_key(state.key, state.step), hp, tx)
            return new.replace(step=state.step + 1), m

        return jax.lax.scan(body, state, None, length=num_updates)

    def train(key, hp: FoRHParams):
        return run(init(key, hp), hp, num_updates=config.num_iterations)

    def evaluate(key, params, problem_objs: np.ndarray, n_samples: int = 64):
        """Per problem ([P, L] start objects): (success rate [P], distinct correct trajectories [P])."""
        pobj = jnp.asarray(np.repeat(np.asarray(problem_objs), n_samples, 0))
        tr = jax.jit(lambda k, p: forward_rollout(k, p, env, ep, apply, pobj.shape[0], init_obj=pobj))(
            key, params)
        n = len(problem_objs)
        solved = np.asarray(solved_fn(tr.terminal_obj)).reshape(n, n_samples)
        term = np.asarray(tr.terminal_obj).reshape(n, n_samples, -1)
        distinct = [len({tuple(x) for x, ok in zip(term[i], solved[i], strict=True) if ok}) for i in range(n)]
        return solved.mean(1), np.asarray(distinct)

    return FoRRecipe(config=config, num_updates=config.num_iterations, env=env, env_params=ep,
                     apply=apply, init=init, run=run, train=train, evaluate=evaluate)


COMPARED_METHODS = ("for", "for_no_replay", "tb", "ppo", "reinforce")


def method_setup(c, method: str) -> tuple[FoRConfig, FoRHParams]:
    """(FoRConfig, FoRHParams) of a named method, as the FoR experiments compare them.

    "for": the FoR recipe (log-partition-variance TB, `for_samples_per_problem` samples per problem,
    a buffer of distinct successes replayed each batch, local search `for_local_search` with
    `for_local_search_restarts` restarts and proposal `for_local_search_proposal`, reward
    R^`for_reward_beta`);
    "for_no_replay": the same loss without buffer and local search; "tb": per-problem log Z TB;
    "ppo": clipped surrogate; "reinforce": moving-average baseline. `c` is the experiment's config
    (attributes batch_size, num_iterations, hidden, lr, epsilon, baseline_decay, clip_eps, vf_coef,
    ent_coef, ppo_epochs, ppo_minibatches and the for_* fields).
    """
    base = {"batch_size": c.batch_size, "num_iterations": c.num_iterations, "hidden": tuple(c.hidden)}
    hp = FoRHParams(lr=c.lr, epsilon=c.epsilon, baseline_decay=c.baseline_decay, clip_eps=c.clip_eps,
                    vf_coef=c.vf_coef, ent_coef=c.ent_coef)
    if method == "for":
        cfg = FoRConfig(method="logz_var", samples_per_problem=c.for_samples_per_problem,
                        replay_capacity=c.for_replay_capacity, replay_per_problem=c.for_replay_per_problem,
                        local_search=c.for_local_search, local_search_restarts=c.for_local_search_restarts,
                        local_search_proposal=c.for_local_search_proposal, **base)
        return cfg, hp.replace(reward_beta=c.for_reward_beta)
    if method == "for_no_replay":
        cfg = FoRConfig(method="logz_var", samples_per_problem=c.for_samples_per_problem, **base)
        return cfg, hp.replace(reward_beta=c.for_reward_beta)
    if method in ("tb", "reinforce"):
        return FoRConfig(method=method, **base), hp
    if method == "ppo":
        return FoRConfig(method="ppo", ppo_epochs=c.ppo_epochs, ppo_minibatches=c.ppo_minibatches, **base), hp
    raise ValueError(f"Unknown method {method!r}: use one of {COMPARED_METHODS}.")
