"""The reward maximisers Flow of Reasoning is compared with, on the same policy network.

    reinforce  L = -mean_b (1[x_b solved] - baseline) sum_t log PF(a_t|s_t), moving-average baseline
    ppo        clipped surrogate (Schulman et al. 2017, arXiv:1707.06347) on r = reward_scale R(x),
               A_t = r - V(s_t) (V = the same network's scalar head), normalised over the batch:
               L = mean_t [-min(rho_t A_t, clip(rho_t, 1 +- eps) A_t) + vf_coef (V(s_t) - r)^2
                           - ent_coef H(PF(.|s_t))],  rho_t = PF(a_t|s_t) / mu_old(a_t|s_t),
               mu_old = the epsilon-mixed policy that sampled the batch (with the on-policy PF_old
               in the denominator, an explored action of tiny PF_old gets an unbounded ratio on a
               negative advantage, and the run collapsed: success 0.88 -> 0 on 2 problems)

Each update takes `rollout(params, k_problems, k_sample) -> (Trajectories, solved [B] float)`
(on-policy samples of a batch of problems drawn with `k_problems`, built by `lfx.gfn.for_train`)
and `policy_on(params, obj [T, b, L]) -> (PolicyOutput, forward masks)`, flat over [T b] (a
teacher-forced pass over stored states).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from lfx.gfn.rollout import exploration_log_probs, masked_log_softmax


def reinforce_update(params, opt_state, baseline, key, hp, *, tx, rollout):
    """One REINFORCE step; returns (params, opt_state, baseline, metrics). Baseline: gradient-free."""

    k1, k2 = jax.random.split(key)

    def loss_fn(p):
        tr, solved = rollout(p, k1, k2)
        return -jnp.mean((solved - baseline) * jnp.sum(tr.log_pf, 0)), solved.mean()

    (loss, succ), g = jax.value_and_grad(loss_fn, has_aux=True)(params)
    up, opt_state = tx.update(g, opt_state, params)
    params = optax.apply_updates(params, up)
    baseline = hp.baseline_decay * baseline + (1 - hp.baseline_decay) * succ
    return params, opt_state, baseline, {"train/loss": loss, "train/success": succ}


def behaviour_log_probs(params, obj, act, epsilon, *, policy_on):
    """[T, B] log mu(a_t|s_t) of the epsilon-mixed sampling policy that took the actions."""
    out, fmask = policy_on(params, obj)
    lp = exploration_log_probs(out.fwd_logits, fmask, epsilon, 1.0)
    return jnp.take_along_axis(lp, act.reshape(-1, 1), -1)[:, 0].reshape(act.shape)


def ppo_minibatch_loss(params, mb, hp, *, policy_on):
    """The module docstring's PPO loss on a minibatch (obj, act, valid, old_logp, adv, ret) [T, b]."""
    obj, act, valid, old_logp, adv, ret = mb
    out, fmask = policy_on(params, obj)
    logp_all = masked_log_softmax(out.fwd_logits, fmask)
    logp = jnp.take_along_axis(logp_all, act.reshape(-1, 1), -1)[:, 0].reshape(act.shape)
    ratio = jnp.exp(logp - old_logp)
    pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - hp.clip_eps, 1 + hp.clip_eps) * adv)
    v = out.log_flow.reshape(act.shape)
    ent = -jnp.sum(jnp.where(fmask, jnp.exp(logp_all) * logp_all, 0.0), -1).reshape(act.shape)
    per = pg + hp.vf_coef * (v - ret) ** 2 - hp.ent_coef * ent
    return jnp.sum(jnp.where(valid, per, 0.0)) / jnp.maximum(valid.sum(), 1)


def ppo_update(params, opt_state, key, hp, *, tx, rollout, policy_on, batch_size, epochs,
               minibatches):
    """One PPO iteration (`epochs` x `minibatches` Adam steps); returns (params, opt_state, metrics)."""
    k1, k2, k3 = jax.random.split(key, 3)
    tr, solved = rollout(params, k1, k2)
    tr = jax.lax.stop_gradient(tr)
    behaviour_logp = behaviour_log_probs(params, tr.obj, tr.actions, hp.epsilon, policy_on=policy_on)
    ret = jnp.broadcast_to(hp.reward_scale * jnp.exp(tr.log_reward)[None], tr.valid.shape)
    adv = ret - tr.log_flow
    n = jnp.maximum(tr.valid.sum(), 1)
    mu = jnp.sum(jnp.where(tr.valid, adv, 0.0)) / n
    sd = jnp.sqrt(jnp.sum(jnp.where(tr.valid, (adv - mu) ** 2, 0.0)) / n)
    adv = (adv - mu) / (sd + 1e-8)
    data = (tr.obj, tr.actions, tr.valid, behaviour_logp, adv, ret)
    B, M = batch_size, minibatches

    def epoch(c, ke):
        perm = jax.random.permutation(ke, B).reshape(M, B // M)

        def mb_step(c, idx):
            params, opt = c
            mb = jax.tree.map(lambda a: a[:, idx], data)
            loss, g = jax.value_and_grad(ppo_minibatch_loss)(params, mb, hp, policy_on=policy_on)
            up, opt = tx.update(g, opt, params)
            return (optax.apply_updates(params, up), opt), loss

        return jax.lax.scan(mb_step, c, perm)

    (params, opt_state), losses = jax.lax.scan(epoch, (params, opt_state),
                                               jax.random.split(k3, epochs))
    return params, opt_state, {"train/loss": losses.mean(), "train/success": solved.mean()}
