"""OC-GFN adaptation to a downstream reward: frozen OC-GFN + amortised predictor (N, Q).

Pan et al. 2024, "Pre-Training and Fine-Tuning Generative Flow Networks" (arXiv:2310.03419), Sec. 4.2.

**Direct conversion (the marginal over outcomes).** A pre-trained OC-GFN (`lfx.gfn.ocgfn`) gives,
for every outcome y, a flow F(s|y) and policy PF(s'|s, y) for the reward R(x|y) = 1[x = y], all
with the same (uniform) PB. Flows sharing a PB are linear in the reward, so for a downstream reward
R the edge flow

    N*(s -> s') = sum_y R(y) F(s|y) PF(s'|s, y)

is a flow for R, and its policy

    PF^R(s'|s) = N*(s -> s') / sum_{s''} N*(s -> s'')  ( = sum_y R(y) F(s|y) PF(s'|s,y) / sum_y R(y) F(s|y) )

samples x with probability R(x) / Z without any retraining (the paper's direct conversion). The sum
runs over every terminal object y: intractable beyond toy sizes. `direct_conversion` computes it by
enumeration (small environments only) and serves as the exact reference.

**Amortised predictor.** Two networks are trained while the OC-GFN stays frozen:

* N(s, a) > 0 (log output `log_n`): the predicted numerator N*(s -> s') of the edge taken by forward
  action a (exit included). The adapted sampler is pi(a|s) = N(s, a) / sum_a' N(s, a').
* Q(y | s, a): a distribution over outcomes, autoregressive over the object's slots (one softmax per
  slot over its allowed values, conditioned on s, a and the slots drawn so far).

They are trained towards the constraint, for every (s, a, y),

    N(s, a) Q(y|s, a) = R(y) F(s|y) PF(a|s, y),

    L = mean_{(s,a) on sampled trajectories, y ~ Q_eps(.|s,a)} (log N(s,a) + log Q(y|s,a)
                                                               - log R(y) - log F(s|y) - log PF(a|s,y))^2.

Summing the constraint over y gives N(s, a) = N*(s -> s'): at a zero loss the predictor is exactly
the marginal (the paper's Proposition 2, as stated by reviewers of the paper), and Q(y|s,a) is the
posterior over outcomes given the edge. It is a one-step GFlowNet over outcomes y with reward
R(y) F(s|y) PF(a|s,y) and partition function N(s, a), trained with trajectory balance. F and PF come
from the frozen OC-GFN (stop-gradient: no gradient reaches `pre_params`).

What is established and what is our choice (see docs/results/gfn.md, OC-GFN adaptation):
  * From the paper (abstract) and public reviews of it (the paper's body was not readable offline):
    the direct-conversion formula; a learned numerator network N(s'|s) with an auxiliary outcome
    network Q(y|s', s), trained jointly with a GFlowNet-like loss that is zero only when N equals
    the marginal; trajectories collected with the policy from N; outcomes drawn from a tempered /
    epsilon-greedy Q.
  * Our choices: the exact loss above (trajectory balance with N as the partition function); Q
    autoregressive over slots; epsilon-uniform exploration per slot for y and per action for the
    trajectories; the support of Q restricted to outcomes reachable through the edge (F(s'|y) = 0
    otherwise, a property of the DAG, `descendant_slot_mask`; for the exit edge at x only y = x),
    because the relabelling variant of pre-training sees successes only, so its F(s|y) is not
    trained at pairs where y cannot be reached from s (the paper's method, with negatives, sees some
    such pairs; the restriction is exact for both).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from lfx.gfn.base import GFNEnv, GFNState
from lfx.gfn.hypergrid import Hypergrid
from lfx.gfn.metrics import DAG, modes_found, terminal_distribution, total_variation
from lfx.gfn.networks import PolicyOutput, mlp_apply, mlp_init
from lfx.gfn.ocgfn import outcome_obs
from lfx.gfn.positional import PositionalEnv
from lfx.gfn.recipe import POSITIVE, UNIT, check_hparams, iteration_key
from lfx.gfn.rollout import NEG, forward_rollout, masked_log_softmax


# ------------------------------------------------------------------ outcome structure
def num_values(env: GFNEnv) -> int:
    """V: the number of values a slot of a terminal object takes (as `ocgfn.sample_outcomes`)."""
    return getattr(env, "height", None) or env.vocab


def descendant_slot_mask(env: GFNEnv, obj: jax.Array) -> jax.Array:
    """[..., L, V] bool: slot values of terminal objects y reachable from the state `obj` ([..., L]).

    Hypergrid: y_i >= obj_i. Fill-in-any-order (bit sequences, Ising): filled slots are kept, empty
    slots (-1) take any value. Reachability factorises over slots in both, so the mask is exact.
    """
    v = jnp.arange(num_values(env))
    o = obj[..., None]
    if isinstance(env, Hypergrid):
        return v >= o
    if isinstance(env, PositionalEnv):
        return (o < 0) | (v == o)
    raise ValueError(
        f"OC-GFN adaptation needs the outcome-reachability structure of {type(env).__name__}; "
        "supported: Hypergrid and PositionalEnv subclasses (bit sequences, Ising). Add a branch to "
        "lfx.gfn.ocgfn_adapt.descendant_slot_mask."
    )


def edge_outcome_mask(env: GFNEnv, env_params: Any, obj: jax.Array, action: jax.Array) -> jax.Array:
    """[..., L, V] bool: outcomes y with F(s -> s' | y) > 0 for the edge (obj, action).

    Non-exit: y reachable from the child s'. Exit at x: y = x only (R(x|y) = 1[x = y]).
    """
    lead = obj.shape[:-1]
    flat_o, flat_a = obj.reshape(-1, obj.shape[-1]), action.reshape(-1)
    st = GFNState(time=jnp.zeros(flat_a.shape, jnp.int32), obj=flat_o, done=jnp.zeros(flat_a.shape, bool))
    child = jax.vmap(env.step_forward, in_axes=(0, 0, None))(st, flat_a, env_params).obj
    is_exit = (flat_a == env.exit_action)[:, None, None]
    exact = flat_o[..., None] == jnp.arange(num_values(env))
    m = jnp.where(is_exit, exact, descendant_slot_mask(env, child))
    return m.reshape(*lead, *m.shape[-2:])


# ------------------------------------------------------------------ predictor networks
def make_predictor(env: GFNEnv, hidden=(128, 128)):
    """Returns `(init(key) -> params, log_n(params, obs [..., O]) -> [..., A], q_logits)`.

    `q_logits(params, obs [..., O], action [...], prefix [..., L, L*V]) -> [..., L, V]`: the logits
    of slot i given s, a and the one-hot of slots < i (`prefix[..., i]`, zeros from slot i on).
    params = {"n": MLP O -> A, "q": MLP (O + A + L*V + L) -> V}.
    """
    L, V, A, obs_dim = env.obj_size, num_values(env), env.num_actions, env.obs_size

    def init(key):
        kn, kq = jax.random.split(key)
        return {"n": mlp_init(kn, (obs_dim, *hidden, A)),
                "q": mlp_init(kq, (obs_dim + A + L * V + L, *hidden, V))}

    def log_n(params, obs):
        return mlp_apply(params["n"], obs)

    def q_logits(params, obs, action, prefix):
        lead = prefix.shape[:-2]
        ctx = jnp.concatenate([obs, jax.nn.one_hot(action, A)], -1)
        ctx = jnp.broadcast_to(ctx[..., None, :], (*lead, L, ctx.shape[-1]))
        pos = jnp.broadcast_to(jnp.eye(L), (*lead, L, L))
        return mlp_apply(params["q"], jnp.concatenate([ctx, prefix, pos], -1))

    return init, log_n, q_logits


def _prefix(y: jax.Array, L: int, V: int) -> jax.Array:
    """[..., L] outcomes -> [..., L, L*V]: row i holds the one-hot of slots < i."""
    oh = jax.nn.one_hot(y, V)  # [..., L, V]
    below = jnp.tril(jnp.ones((L, L)), -1)  # row i: slots j < i
    return (below[:, :, None] * oh[..., None, :, :]).reshape(*y.shape[:-1], L, L * V)


def q_log_prob(q_logits, params, obs, action, y, slot_mask):
    """log Q(y | s, a) = sum_i log softmax_i(y_i) over allowed values. obs [M, O], action [M],
    y [M, K, L], slot_mask [M, L, V]; returns [M, K]."""
    L, V = slot_mask.shape[-2:]
    K = y.shape[1]
    bc = lambda x: jnp.broadcast_to(x[:, None], (x.shape[0], K, *x.shape[1:]))
    logits = q_logits(params, bc(obs), bc(action), _prefix(y, L, V))  # [M, K, L, V]
    logp = masked_log_softmax(logits, bc(slot_mask))
    return jnp.take_along_axis(logp, y[..., None], -1)[..., 0].sum(-1)


def q_sample(key, q_logits, params, obs, action, slot_mask, num_samples, *, epsilon=0.0):
    """Draws `num_samples` outcomes per edge from (1 - eps) Q + eps uniform(allowed), slot by slot.

    obs [M, O], action [M], slot_mask [M, L, V]; returns y [M, K, L] int32 (K = num_samples).
    """
    M, L, V = slot_mask.shape
    K = num_samples
    bc = lambda x: jnp.broadcast_to(x[:, None], (M, K, *x.shape[1:]))
    obs_k, act_k, mask_k = bc(obs), bc(action), bc(slot_mask)

    def slot(y, i):
        logits = q_logits(params, obs_k, act_k, _prefix(y, L, V))[..., i, :]
        m = mask_k[..., i, :]
        p = (1.0 - epsilon) * jax.nn.softmax(jnp.where(m, logits, NEG), -1) + epsilon * m / m.sum(-1, keepdims=True)
        v = jax.random.categorical(jax.random.fold_in(key, i), jnp.where(m, jnp.log(jnp.maximum(p, 1e-30)), -jnp.inf))
        return y.at[..., i].set(v.astype(jnp.int32)), None

    y0 = jnp.zeros((M, K, L), jnp.int32)
    y, _ = jax.lax.scan(slot, y0, jnp.arange(L))
    return jax.lax.stop_gradient(y)


# ------------------------------------------------------------------ loss
def outcome_targets(pre_params, env, env_params, cond_apply, s_obj, actions, y):
    """log R(y) + log F(s|y) + log PF(a|s, y) from the frozen OC-GFN (gradient stopped).

    s_obj [M, L], actions [M], y [M, K, L]; returns [M, K].
    """
    M, K, L = y.shape
    flat_s = jnp.broadcast_to(s_obj[:, None], (M, K, L)).reshape(M * K, L)
    st = GFNState(time=jnp.zeros((M * K,), jnp.int32), obj=flat_s, done=jnp.zeros((M * K,), bool))
    obs = jax.vmap(env.get_obs, in_axes=(0, None))(st, env_params)
    fmask = jax.vmap(env.forward_mask, in_axes=(0, None))(st, env_params)
    out = cond_apply(pre_params, obs, outcome_obs(env, env_params, y.reshape(M * K, L)))
    logp = masked_log_softmax(out.fwd_logits, fmask)
    a = jnp.broadcast_to(actions[:, None], (M, K)).reshape(-1)
    log_pf = jnp.take_along_axis(logp, a[:, None], -1)[:, 0]
    yst = GFNState(time=jnp.zeros((M * K,), jnp.int32), obj=y.reshape(M * K, L), done=jnp.zeros((M * K,), bool))
    log_r = jax.vmap(env.log_reward, in_axes=(0, None))(yst, env_params)
    return jax.lax.stop_gradient((log_r + out.log_flow + log_pf).reshape(M, K))


def predictor_loss(log_n_sa, log_q_y, target, mask):
    """Trajectory balance of the one-step outcome GFlowNet (module docstring).

        L = sum_{m,k} mask_m (log N(s_m, a_m) + log Q(y_mk|s_m, a_m) - target_mk)^2 / (K sum_m mask_m)

    Args:
      log_n_sa: [M] log N(s, a) of each edge; log_q_y: [M, K] log Q(y|s, a);
      target: [M, K] log R(y) + log F(s|y) + log PF(a|s, y); mask: [M] bool (valid edges).
    Returns `(loss, metrics)`.
    """
    delta = log_n_sa[:, None] + log_q_y - target
    w = mask[:, None].astype(delta.dtype)
    n = jnp.maximum(w.sum() * delta.shape[1], 1.0)
    return jnp.sum(w * delta**2) / n, {"adapt/residual_abs": jnp.sum(w * jnp.abs(delta)) / n}


# ------------------------------------------------------------------ exact direct conversion
def direct_conversion(dag: DAG, env, env_params, cond_apply, pre_params, outcomes, log_r_y):
    """Exact marginal over outcomes by enumeration: log N*(s, a) and log PF^R(a|s), both [S, A].

    log N*(s, a) = logsumexp_y [log R(y) + log F(s|y) + log PF(a|s, y)] over outcomes y with
    F(s -> s'|y) > 0 (`edge_outcome_mask`). outcomes: [Y, L]; log_r_y: [Y]. Small DAGs only
    (Y * S * A terms).
    """
    states = jnp.asarray(dag.states)
    S, A = dag.fwd_mask.shape
    edge_mask = edge_outcome_mask(  # [S, A, L, V]
        env, env_params, jnp.broadcast_to(states[:, None], (S, A, states.shape[-1])),
        jnp.broadcast_to(jnp.arange(A), (S, A)),
    )

    def per_outcome(y, lr):
        out = cond_apply(pre_params, dag.obs, jnp.broadcast_to(outcome_obs(env, env_params, y[None]), dag.obs.shape))
        logp = masked_log_softmax(out.fwd_logits, dag.fwd_mask)
        ok = jnp.all(jnp.take_along_axis(edge_mask, y[:, None].astype(jnp.int32)[None, None], -1)[..., 0], -1)
        return jnp.where(ok & dag.fwd_mask, lr + out.log_flow[:, None] + logp, -jnp.inf)

    def acc(log_n, t):  # running logsumexp over outcomes: memory S * A, not Y * S * A
        return jnp.logaddexp(log_n, per_outcome(*t)), None

    log_n, _ = jax.lax.scan(acc, jnp.full((S, A), -jnp.inf), (outcomes, log_r_y))
    log_pf = log_n - jax.nn.logsumexp(jnp.where(dag.fwd_mask, log_n, -jnp.inf), -1, keepdims=True)
    return log_n, jnp.where(dag.fwd_mask, log_pf, NEG)


# ------------------------------------------------------------------ recipe
@dataclasses.dataclass(frozen=True)
class AdaptConfig:
    batch_size: int = 16
    num_iterations: int = 1000
    hidden: tuple = (128, 128)
    num_outcomes: int = 4  # K outcomes drawn per visited edge
    eval_every: int = 0  # exact TV of the adapted sampler every N iterations (needs `dag`)


@struct.dataclass
class AdaptHParams:
    lr: float = 1e-3
    epsilon: float = 0.05  # trajectories: epsilon-uniform over actions
    outcome_epsilon: float = 0.1  # outcomes: epsilon-uniform per slot over allowed values

    def validate(self) -> None:
        check_hparams(self, {"lr": POSITIVE, "epsilon": UNIT, "outcome_epsilon": UNIT},
                      "config.adapt")


@struct.dataclass
class AdaptState:
    """params of the predictor (N, Q); found: modes sampled so far; key: the run key."""

    params: Any
    opt_state: Any
    found: jax.Array
    step: jax.Array
    key: jax.Array


class AdaptRecipe(NamedTuple):
    """`train(key, hp, pre_params) = run(init(key, hp, pre_params), hp, pre_params, num_updates=...)`.

    `pre_params` (the frozen OC-GFN) is the recipe's extra argument (`lfx.experiment.recipe_functions`
    passes it unbatched). `policy(params, obs)` is the adapted sampler pi(a|s) ∝ N(s, a); `exact_tv`
    its exact TV to R/Z (None without `dag`).
    """

    config: AdaptConfig
    num_updates: int
    init: Callable[..., AdaptState]
    run: Callable[..., tuple[AdaptState, dict[str, jax.Array]]]
    train: Callable[..., tuple[AdaptState, dict[str, jax.Array]]]
    log_n: Callable
    q_logits: Callable
    policy: Callable
    exact_tv: Callable | None


def make_train(config: AdaptConfig, env: GFNEnv, env_params: Any, cond_apply: Callable,
               dag: DAG | None = None) -> AdaptRecipe:
    """The adaptation recipe: each `run` iteration is one step of the amortised predictor.

    Each iteration: B trajectories from pi(a|s) ∝ N(s, a) (epsilon-uniform exploration); K outcomes
    per visited edge from Q (epsilon per slot); one Adam step on `predictor_loss` (N and Q jointly;
    the OC-GFN `pre_params` frozen). metrics: "adapt/loss", "adapt/modes_found" (distinct modes among
    all sampled terminal objects so far), "adapt/reward_queries" (R evaluations this iteration: B
    terminal objects + T*B*K outcomes), and "eval/tv" (exact, every `eval_every`; NaN elsewhere).
    """
    if config.batch_size < 1 or config.num_iterations < 1 or config.num_outcomes < 1:
        raise ValueError("batch_size, num_iterations and num_outcomes must all be >= 1.")
    if config.eval_every and dag is None:
        raise ValueError("eval_every > 0 needs `dag` (lfx.gfn.metrics.build_dag) for the exact TV.")
    descendant_slot_mask(env, env.initial_obj())  # raises early for unsupported environments
    init_net, log_n_fn, q_logits = make_predictor(env, config.hidden)
    num_modes = int(env.mode_hits(env.initial_obj()[None], env_params).shape[-1])
    T, B, K = env.max_steps, config.batch_size, config.num_outcomes

    def policy(params, obs):
        lg = log_n_fn(params, obs)
        return PolicyOutput(lg, jnp.zeros((*lg.shape[:-1], env.num_backward_actions)), jnp.zeros(lg.shape[:-1]))

    def exact_tv(params):
        log_pf = masked_log_softmax(log_n_fn(params, dag.obs), dag.fwd_mask)
        return total_variation(dag.target, terminal_distribution(dag, log_pf))

    def optimizer(hp):
        return optax.inject_hyperparams(optax.adam)(learning_rate=hp.lr)

    def loss_fn(params, obs, actions, y, mask, slot_mask, target):
        log_n_sa = jnp.take_along_axis(log_n_fn(params, obs), actions[:, None], -1)[:, 0]
        log_q = q_log_prob(q_logits, params, obs, actions, y, slot_mask)
        return predictor_loss(log_n_sa, log_q, target, mask)

    def init(key, hp: AdaptHParams, pre_params=None) -> AdaptState:
        del pre_params  # the predictor starts from scratch; the argument keeps the recipe protocol
        k0, k_run = jax.random.split(key)
        params = init_net(k0)
        # one dummy slot when the env has no modes: orbax cannot save zero-size arrays
        return AdaptState(params, optimizer(hp).init(params), jnp.zeros((max(num_modes, 1),), bool),
                          jnp.zeros((), jnp.int32), k_run)

    def run(state: AdaptState, hp: AdaptHParams, pre_params, *, num_updates: int):
        tx = optimizer(hp)

        def it(state, _):
            params, opt, found, i = state.params, state.opt_state, state.found, state.step
            k1, k2 = jax.random.split(iteration_key(state.key, i))
            tr = forward_rollout(k1, jax.lax.stop_gradient(params), env, env_params, policy, B, epsilon=hp.epsilon)
            tr = jax.lax.stop_gradient(tr)
            s_obj = tr.obj.reshape(T * B, -1)
            actions, mask = tr.actions.reshape(-1), tr.valid.reshape(-1)
            st = GFNState(time=jnp.zeros((T * B,), jnp.int32), obj=s_obj, done=jnp.zeros((T * B,), bool))
            obs = jax.vmap(env.get_obs, in_axes=(0, None))(st, env_params)
            slot_mask = edge_outcome_mask(env, env_params, s_obj, actions)
            y = q_sample(k2, q_logits, params, obs, actions, slot_mask, K, epsilon=hp.outcome_epsilon)
            target = outcome_targets(pre_params, env, env_params, cond_apply, s_obj, actions, y)
            (loss, m), g = jax.value_and_grad(loss_fn, has_aux=True)(
                params, obs, actions, y, mask, slot_mask, target
            )
            up, opt = tx.update(g, opt, params)
            params = optax.apply_updates(params, up)
            if num_modes:
                found = modes_found(found, env.mode_hits(tr.terminal_obj, env_params))
            m = {**m, "adapt/loss": loss, "adapt/modes_found": found.sum(),
                 "adapt/log_reward": tr.log_reward.mean(), "adapt/reward_queries": B + mask.sum() * K}
            if config.eval_every:
                do = (i % config.eval_every == 0) | (i == config.num_iterations - 1)
                m["eval/tv"] = jax.lax.cond(do, lambda: exact_tv(params), lambda: jnp.float32(jnp.nan))
            return AdaptState(params, opt, found, i + 1, state.key), m

        return jax.lax.scan(it, state, None, length=num_updates)

    def train(key, hp: AdaptHParams, pre_params):
        return run(init(key, hp, pre_params), hp, pre_params, num_updates=config.num_iterations)

    return AdaptRecipe(config=config, num_updates=config.num_iterations, init=init, run=run,
                       train=train, log_n=log_n_fn, q_logits=q_logits, policy=policy,
                       exact_tv=exact_tv if dag is not None else None)
