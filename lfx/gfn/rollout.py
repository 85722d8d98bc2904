"""Batched forward rollouts: one policy evaluation per visited state, differentiable end to end.

The rollout is a `lax.scan` over the env's `max_steps` forward actions. Each step evaluates the
network ONCE on the current states and takes from that single pass the sampling distribution, the
on-policy log PF of the sampled action, the log PB of the edge that led into the current state and
log F(s). Because the log-probabilities are produced inside the scan, a loss differentiates straight
through it: there is no second pass over the stored states.

Padding: the scan always runs `max_steps` steps; lanes that have exited are carried along and
masked (hypergrid: dim * (H - 1) + 1 steps at most, while a trained sampler's mean length is about
half of that at 2x8 and a third at 4x16, so up to 2-3x of the network work is padding at large
batch). Two ways around it were measured on CPU and did not pay: `skip_done=True` wraps each step in
`lax.cond(all lanes done, skip, step)` (cost = longest trajectory in the batch), but under reverse-
mode AD the cond's residual bookkeeping made whole training iterations ~1.25x SLOWER at hypergrid
2x8 and 4x16, batch 16 (median of 5 interleaved pairs, docs/benchmarks/gfn.md); gathering the
active lanes into power-of-two buckets (`lax.switch` over bucket sizes) gave no measurable gain at
4x16, batch 512. `skip_done` stays available (off by default); under `vmap` its cond becomes a
select and skips nothing. For the losses that need only per-trajectory sums of log PF / log PB (TB,
log-partition variance), `lfx.gfn.packed` removes the padding instead: it samples without autodiff
in a refill pool and differentiates only the transitions taken (`GFNConfig(rollout="packed")`).

Sampling distribution (exploration): (1 - epsilon) * softmax(logits / temperature) + epsilon *
uniform(valid actions). The recorded `log_pf` is always the on-policy log softmax(logits), which is
what the losses need.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lfx.gfn.base import GFNEnv, GFNState
from lfx.gfn.networks import PolicyOutput

NEG = -1e9  # finite "minus infinity" for masked logits: keeps gradients free of NaN


class Trajectories(NamedTuple):
    """A batch of forward trajectories; step arrays are [T, B] (T = env.max_steps).

    Step t is the action taken at state s_t. For t < length: `valid` is True; `is_exit` marks the
    last action (x -> s_f). `log_pb[t]` is log PB(s_{t-1} | s_t) (0 at t = 0 and at invalid steps).

    Attributes:
      obj: [T, B, L] state s_t at each step.
      actions: [T, B] int32 forward actions.
      valid: [T, B] bool.
      is_exit: [T, B] bool.
      log_pf: [T, B] on-policy log PF(a_t | s_t).
      log_pb: [T, B] log PB(s_{t-1} | s_t).
      log_flow: [T, B] log F(s_t) from the network.
      log_r: [T, B] log R(s_t).
      fwd_logits: [T, B, A] masked logits (only when `keep_logits`; else shape [T, B, 0]).
      fwd_mask: [T, B, A] forward masks (only when `keep_logits`; else [T, B, 0]).
      terminal_obj: [B, L] the terminated objects x.
      log_reward: [B] log R(x).
      length: [B] number of forward actions, exit included.
    """

    obj: jax.Array
    actions: jax.Array
    valid: jax.Array
    is_exit: jax.Array
    log_pf: jax.Array
    log_pb: jax.Array
    log_flow: jax.Array
    log_r: jax.Array
    fwd_logits: jax.Array
    fwd_mask: jax.Array
    terminal_obj: jax.Array
    log_reward: jax.Array
    length: jax.Array


def masked_log_softmax(logits: jax.Array, mask: jax.Array) -> jax.Array:
    return jax.nn.log_softmax(jnp.where(mask, logits, NEG), axis=-1)


def exploration_log_probs(logits, mask, epsilon, temperature):
    """log of (1 - eps) softmax(logits / temp) + eps uniform(mask); -inf outside the mask."""
    tempered = jax.nn.softmax(jnp.where(mask, logits / temperature, NEG), axis=-1)
    uniform = mask / jnp.maximum(mask.sum(-1, keepdims=True), 1)
    probs = (1.0 - epsilon) * tempered + epsilon * uniform
    return jnp.where(mask, jnp.log(jnp.maximum(probs, 1e-30)), -jnp.inf)


def forward_rollout(
    key: jax.Array,
    policy_params: Any,
    env: GFNEnv,
    env_params: Any,
    policy_apply: Callable[[Any, jax.Array], PolicyOutput],
    num_trajectories: int,
    *,
    epsilon: float | jax.Array = 0.0,
    temperature: float | jax.Array = 1.0,
    learned_pb: bool = False,
    exit_logit_from_reward: bool = False,
    keep_logits: bool = False,
    skip_done: bool = False,
    skip_chunk: int = 0,
    init_obj: jax.Array | None = None,
) -> Trajectories:
    """Samples `num_trajectories` trajectories from s0 (see the module docstring).

    Args:
      key: typed PRNG key.
      policy_params: network parameters (gradients flow to `log_pf`, `log_pb`, `log_flow`).
      env, env_params: a `GFNEnv` and its params.
      policy_apply: `(params, obs [B, obs_size]) -> PolicyOutput`.
      num_trajectories: B.
      epsilon, temperature: exploration (traced floats allowed).
      learned_pb: PB from the network's backward logits; else uniform over parents.
      exit_logit_from_reward: replace the exit logit by log R(s) (flow matching's edge flows).
      keep_logits: also store masked forward logits and masks (flow matching needs them).
      skip_done: skip steps once every lane has exited (see module docstring).
      skip_chunk: if > 0, run the steps in chunks of this many under one `lax.cond` each, skipping
        whole chunks once every lane has exited (the cond's cost is paid once per chunk).
      init_obj: optional [B, L] start objects (e.g. one Game24 puzzle per lane); default s0.
    """
    B, T, A = num_trajectories, env.max_steps, env.num_actions
    v = lambda f: jax.vmap(f, in_axes=(0, None))  # noqa: E731
    v2 = lambda f: jax.vmap(f, in_axes=(0, 0, None))  # noqa: E731
    s0 = jax.vmap(lambda _: env.init_state())(jnp.arange(B))
    if init_obj is not None:
        s0 = s0.replace(obj=jnp.asarray(init_obj, jnp.int32))
    n_keep = A if keep_logits else 0

    def step(carry, t):
        state, prev_bwd = carry
        obs = v(env.get_obs)(state, env_params)
        out = policy_apply(policy_params, obs)
        fmask = v(env.forward_mask)(state, env_params)
        bmask = v(env.backward_mask)(state, env_params)
        log_r = v(env.log_reward)(state, env_params)
        logits = out.fwd_logits
        if exit_logit_from_reward:
            logits = logits.at[:, env.exit_action].set(log_r)
        logp = masked_log_softmax(logits, fmask)
        sample_logp = exploration_log_probs(
            jax.lax.stop_gradient(logits), fmask, epsilon, temperature
        )
        action = jax.random.categorical(jax.random.fold_in(key, t), sample_logp, axis=-1)
        log_pf = jnp.take_along_axis(logp, action[:, None], axis=-1)[:, 0]
        if learned_pb:
            logp_b = masked_log_softmax(out.bwd_logits, bmask)
            log_pb = jnp.take_along_axis(logp_b, prev_bwd[:, None], axis=-1)[:, 0]
        else:
            log_pb = -jnp.log(jnp.maximum(bmask.sum(-1), 1).astype(jnp.float32))
        valid = ~state.done
        log_pb = jnp.where(valid & (t > 0), log_pb, 0.0)
        new_state = v2(env.step_forward)(state, action, env_params)
        new_state = jax.tree.map(
            lambda n, o: jnp.where(valid.reshape((-1,) + (1,) * (n.ndim - 1)), n, o),
            new_state,
            state,
        )
        bwd = v2(env.backward_action)(state, jnp.minimum(action, env.exit_action - 1), env_params)
        rec = dict(
            obj=state.obj,
            actions=action.astype(jnp.int32),
            valid=valid,
            is_exit=valid & (action == env.exit_action),
            log_pf=jnp.where(valid, log_pf, 0.0),
            log_pb=log_pb,
            log_flow=out.log_flow,
            log_r=log_r,
            fwd_logits=jnp.where(fmask, logits, NEG)[:, :n_keep],
            fwd_mask=fmask[:, :n_keep],
        )
        return (new_state, bwd.astype(jnp.int32)), rec

    def skip(carry, t):
        state, prev_bwd = carry
        z = lambda dt, *s: jnp.zeros((B, *s), dt)  # noqa: E731
        rec = dict(
            obj=state.obj,
            actions=z(jnp.int32),
            valid=z(bool),
            is_exit=z(bool),
            log_pf=z(jnp.float32),
            log_pb=z(jnp.float32),
            log_flow=z(jnp.float32),
            log_r=z(jnp.float32),
            fwd_logits=z(jnp.float32, n_keep),
            fwd_mask=z(bool, n_keep),
        )
        return carry, rec

    def body(carry, t):
        if not skip_done:
            return step(carry, t)
        return jax.lax.cond(jnp.all(carry[0].done), skip, step, carry, t)

    init = (s0, jnp.zeros((B,), jnp.int32))
    if skip_chunk > 0:
        K = skip_chunk
        C = -(-T // K)
        ts = jnp.arange(C * K).reshape(C, K)

        def chunk(carry, tc):
            return jax.lax.cond(
                jnp.all(carry[0].done),
                lambda c, t: jax.lax.scan(skip, c, t),
                lambda c, t: jax.lax.scan(step, c, t),
                carry, tc,
            )

        (final, _), rec = jax.lax.scan(chunk, init, ts)
        rec = jax.tree.map(lambda x: x.reshape(C * K, *x.shape[2:])[:T], rec)
    else:
        (final, _), rec = jax.lax.scan(body, init, jnp.arange(T))
    return Trajectories(
        **rec,
        terminal_obj=final.obj,
        log_reward=v(env.log_reward)(final, env_params),
        length=rec["valid"].sum(0).astype(jnp.int32),
    )


def parent_edge_log_flows(policy_params, env, env_params, policy_apply, obj):
    """log F(p_b -> s) for every backward action b of every state in `obj` ([..., L]).

    Flow matching needs the in-flow of each visited state, i.e. the edge logits of its parents: one
    extra network pass over the (at most `num_backward_actions`) parents, inherent to FM.
    Returns `(log_edges [..., Ab], mask [..., Ab])`.
    """
    lead = obj.shape[:-1]
    flat = obj.reshape(-1, obj.shape[-1])
    n, Ab = flat.shape[0], env.num_backward_actions
    st = GFNState(time=jnp.zeros((n,), jnp.int32), obj=flat, done=jnp.zeros((n,), bool))
    bmask = jax.vmap(env.backward_mask, in_axes=(0, None))(st, env_params)
    par = jax.vmap(jax.vmap(env.apply_backward, in_axes=(None, 0, None)), in_axes=(0, None, None))(
        st, jnp.arange(Ab), env_params
    )
    fa = jax.vmap(jax.vmap(env.forward_action, in_axes=(None, 0, None)), in_axes=(0, None, None))(
        st, jnp.arange(Ab), env_params
    )
    par_flat = jax.tree.map(lambda x: x.reshape(n * Ab, *x.shape[2:]), par)
    obs = jax.vmap(env.get_obs, in_axes=(0, None))(par_flat, env_params)
    logits = policy_apply(policy_params, obs).fwd_logits.reshape(n, Ab, -1)
    edge = jnp.take_along_axis(logits, jnp.clip(fa, 0, env.num_actions - 2)[..., None], -1)[..., 0]
    return edge.reshape(*lead, Ab), bmask.reshape(*lead, Ab)


def backward_rollout(
    key: jax.Array,
    policy_params: Any,
    env: GFNEnv,
    env_params: Any,
    policy_apply: Callable[[Any, jax.Array], PolicyOutput],
    terminal_obj: jax.Array,
    *,
    learned_pb: bool = False,
) -> Trajectories:
    """Samples trajectories x -> s0 with PB (replay / off-policy) and returns them in FORWARD order.

    One network pass per visited state, as in `forward_rollout`: the pass at s gives PB(.|s) (to
    sample the parent), log PB of the chosen parent, log F(s) and log PF of the forward action from s
    to the child visited just before (exit at x). Runs `max_steps` steps (padded, as the forward
    rollout). `terminal_obj`: [B, L]. Returns `Trajectories` laid out like `forward_rollout`.
    """
    B, T = terminal_obj.shape[0], env.max_steps
    v = lambda f: jax.vmap(f, in_axes=(0, None))  # noqa: E731
    v2 = lambda f: jax.vmap(f, in_axes=(0, 0, None))  # noqa: E731
    x = GFNState(time=jnp.zeros((B,), jnp.int32), obj=terminal_obj, done=jnp.zeros((B,), bool))

    def step(carry, k):
        state, prev_fwd, finished = carry
        out = policy_apply(policy_params, v(env.get_obs)(state, env_params))
        fmask = v(env.forward_mask)(state, env_params)
        bmask = v(env.backward_mask)(state, env_params)
        log_pf = jnp.take_along_axis(masked_log_softmax(out.fwd_logits, fmask), prev_fwd[:, None], -1)[:, 0]
        if learned_pb:
            logp_b = masked_log_softmax(out.bwd_logits, bmask)
            sample_logits = jax.lax.stop_gradient(jnp.where(bmask, logp_b, -jnp.inf))
        else:
            logp_b = jnp.where(bmask, -jnp.log(jnp.maximum(bmask.sum(-1, keepdims=True), 1.0)), NEG)
            sample_logits = jnp.where(bmask, 0.0, -jnp.inf)
        at_s0 = ~jnp.any(bmask, axis=-1)
        b = jax.random.categorical(jax.random.fold_in(key, k), jnp.where(at_s0[:, None], 0.0, sample_logits))
        log_pb = jnp.where(at_s0, 0.0, jnp.take_along_axis(logp_b, b[:, None], -1)[:, 0])
        valid = ~finished
        parent = v2(env.apply_backward)(state, b, env_params)
        fwd = v2(env.forward_action)(state, b, env_params)
        move = valid & ~at_s0
        parent = jax.tree.map(lambda n, o: jnp.where(move.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), parent, state)
        rec = dict(
            obj=state.obj, actions=prev_fwd, valid=valid, log_pf=jnp.where(valid, log_pf, 0.0),
            log_pb=jnp.where(move, log_pb, 0.0), log_flow=out.log_flow,
            log_r=v(env.log_reward)(state, env_params),
        )
        return (parent, jnp.where(move, fwd, prev_fwd).astype(jnp.int32), finished | at_s0), rec

    init = (x, jnp.full((B,), env.exit_action, jnp.int32), jnp.zeros((B,), bool))
    _, rec = jax.lax.scan(step, init, jnp.arange(T))
    length = rec["valid"].sum(0).astype(jnp.int32)
    t = jnp.arange(T)[:, None]
    src = jnp.where(t < length, length - 1 - t, 0)  # forward step t <- backward step n - t
    valid = t < length

    def to_fwd(a):
        g = jnp.take_along_axis(a, src.reshape(src.shape + (1,) * (a.ndim - 2)), axis=0)
        return jnp.where(valid.reshape(valid.shape + (1,) * (a.ndim - 2)), g, jnp.zeros_like(g))

    f = {k_: to_fwd(a) for k_, a in rec.items()}
    # log PB(s_{t-1}|s_t) sits at state s_t, which is backward step n - t: already aligned.
    return Trajectories(
        obj=f["obj"], actions=f["actions"], valid=valid, is_exit=t == (length - 1),
        log_pf=f["log_pf"], log_pb=jnp.where(t > 0, f["log_pb"], 0.0), log_flow=f["log_flow"],
        log_r=f["log_r"], fwd_logits=jnp.zeros((T, B, 0)), fwd_mask=jnp.zeros((T, B, 0), bool),
        terminal_obj=terminal_obj, log_reward=v(env.log_reward)(x, env_params), length=length,
    )
