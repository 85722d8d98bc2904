"""Outcome-conditioned GFlowNet (OC-GFN): reward-free pre-training with hindsight relabelling.

Pan et al. 2024, "Pre-Training and Fine-Tuning Generative Flow Networks" (arXiv:2310.03419). An
OC-GFN is a GFlowNet conditioned on an outcome y (a terminal object) with the conditional reward

    R(x | y) = 1[x = y],   so   Z(y) = 1  and  log F(x | y) + log PF(exit | x, y) = 0 at x = y.

Pre-training: draw outcomes y uniformly, roll out PF(. | ., y) with epsilon-uniform exploration, then
relabel every trajectory with the outcome it actually reached (y' := x, hindsight relabelling, so
its conditional reward is 1) and minimise conditional detailed balance plus trajectory balance with
the known log Z(y') = 0 on the relabelled batch. The relabelled batch needs one network pass over
the visited states with the NEW condition; the sampling pass under y carries no gradient.

At the optimum, PF(. | ., y) reaches y with probability 1 (sampling with the TB residual at zero
for every path into y makes PF(tau | y) = PB(tau | y), whose sum over paths into y is 1), which the
success-rate metric measures: the fraction of conditional samples whose terminal object equals y.

Network input: [obs(s), obs(y)] (the outcome encoded like a state); outputs PF logits and log F(s|y).

Recipe: `make_train(config) -> OCGFNRecipe` (`init(key, hp)`, `run(state, hp, *, num_updates)`,
`train(key, hp)`); the state carries the run key, so chunked runs equal one scan
(`lfx.gfn.recipe.iteration_key`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from lfx.gfn import losses
from lfx.gfn.base import GFNEnv, GFNState
from lfx.gfn.networks import PolicyOutput, mlp_apply, mlp_init
from lfx.gfn.recipe import NON_NEGATIVE, POSITIVE, UNIT, check_hparams, iteration_key
from lfx.gfn.rollout import forward_rollout, masked_log_softmax
from lfx.gfn.train import GFN_ENVS


@dataclasses.dataclass(frozen=True)
class OCGFNConfig:
    """Static settings. env: a key of `lfx.gfn.train.GFN_ENVS`, env_kwargs its arguments;
    eval_every: success rate every N iterations (and at the last); eval_batch: samples it uses."""

    env: str = "hypergrid"
    env_kwargs: tuple = (("dim", 2), ("height", 8))
    batch_size: int = 64
    num_iterations: int = 2000
    hidden: tuple = (256, 256)
    eval_every: int = 100
    eval_batch: int = 256

    def validate(self) -> None:
        for name in ("batch_size", "num_iterations", "eval_every", "eval_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"OCGFNConfig.{name} must be >= 1, got {getattr(self, name)}.")


@struct.dataclass
class OCGFNHParams:
    """Traced: lr (Adam), epsilon (uniform-action exploration), tb_coef (weight of TB next to DB)."""

    lr: float = 1e-3
    epsilon: float = 0.1
    tb_coef: float = 1.0

    def validate(self) -> None:
        check_hparams(self, {"lr": POSITIVE, "epsilon": UNIT, "tb_coef": NON_NEGATIVE})


@struct.dataclass
class OCGFNState:
    """params of the conditional policy; key: the run key; step: iterations done."""

    params: Any
    opt_state: Any
    step: jax.Array
    key: jax.Array


class OCGFNRecipe(NamedTuple):
    """OC-GFN pre-training: `train(key, hp) = run(init(key, hp), hp, num_updates=num_updates)`.

    `apply(params, obs, y_obs)` is the conditional policy; `success_rate(key, params)` the
    evaluation (fraction of `eval_batch` on-policy samples reaching a uniformly drawn outcome).
    """

    config: OCGFNConfig
    num_updates: int
    env: Any
    env_params: Any
    apply: Callable
    success_rate: Callable
    init: Callable[..., OCGFNState]
    run: Callable[..., tuple[OCGFNState, dict[str, jax.Array]]]
    train: Callable[..., tuple[OCGFNState, dict[str, jax.Array]]]


def sample_outcomes(key: jax.Array, env: GFNEnv, n: int) -> jax.Array:
    """[n, L] outcomes drawn uniformly from the terminal space (each slot independently)."""
    high = getattr(env, "height", None) or env.vocab
    return jax.random.randint(key, (n, env.obj_size), 0, high, jnp.int32)


def outcome_obs(env: GFNEnv, env_params: Any, y: jax.Array) -> jax.Array:
    st = GFNState(time=jnp.zeros(y.shape[:1], jnp.int32), obj=y, done=jnp.zeros(y.shape[:1], bool))
    return jax.vmap(env.get_obs, in_axes=(0, None))(st, env_params)


def make_conditional_policy(env: GFNEnv, hidden=(256, 256)):
    """`(init(key), apply(params, obs [B, O], y_obs [B, O]) -> PolicyOutput)` for PF(.|s, y), F(s|y)."""
    n_out = env.num_actions + 1

    def init(key):
        return mlp_init(key, (2 * env.obs_size, *hidden, n_out))

    def apply(params, obs, y_obs):
        out = mlp_apply(params, jnp.concatenate([obs, y_obs], -1))
        fwd = out[..., : env.num_actions]
        bwd = jnp.zeros((*out.shape[:-1], env.num_backward_actions), out.dtype)
        return PolicyOutput(fwd, bwd, out[..., -1])

    return init, apply


def conditional_rollout(key, params, env, env_params, apply, y, *, epsilon=0.0):
    """Trajectories sampled from PF(. | ., y) for outcomes y ([B, L]); uniform PB."""
    y_obs = outcome_obs(env, env_params, y)
    return forward_rollout(
        key, params, env, env_params, lambda p, o: apply(p, o, y_obs), y.shape[0], epsilon=epsilon
    )


def relabelled_loss(params, env, env_params, apply, tr, tb_coef=1.0):
    """Conditional DB + tb_coef * TB (log Z(x) = 0) of trajectories relabelled with their outcome x.

    Args:
      tr: `Trajectories` (sampled under any condition; only states, actions, masks and log PB are
        used). Returns `(loss, metrics)`.
    """
    T, B = tr.valid.shape
    y_obs = outcome_obs(env, env_params, tr.terminal_obj)  # hindsight outcome = reached object
    flat = tr.obj.reshape(T * B, -1)
    st = GFNState(time=jnp.zeros((T * B,), jnp.int32), obj=flat, done=jnp.zeros((T * B,), bool))
    obs = jax.vmap(env.get_obs, in_axes=(0, None))(st, env_params)
    fmask = jax.vmap(env.forward_mask, in_axes=(0, None))(st, env_params)
    out = apply(params, obs, jnp.broadcast_to(y_obs[None], (T, B, y_obs.shape[-1])).reshape(T * B, -1))
    logp = masked_log_softmax(out.fwd_logits, fmask)
    log_pf = jnp.take_along_axis(logp, tr.actions.reshape(-1, 1), -1).reshape(T, B)
    log_pf = jnp.where(tr.valid, log_pf, 0.0)
    log_flow = out.log_flow.reshape(T, B)
    zeros_r = jnp.zeros((T, B))  # log R(x | x) = 0
    db, _ = losses.detailed_balance(log_flow, log_pf, tr.log_pb, zeros_r, tr.valid, tr.is_exit)
    tb, _ = losses.trajectory_balance(0.0, log_pf, tr.log_pb, jnp.zeros((B,)), tr.valid)
    return db + tb_coef * tb, {"pretrain/db": db, "pretrain/tb": tb}


def make_train(config: OCGFNConfig, env: GFNEnv | None = None, env_params: Any = None) -> OCGFNRecipe:
    """Reward-free OC-GFN pre-training as an `OCGFNRecipe`; `env`/`env_params` override config.env.

    metrics["pretrain/success"] (every `eval_every` iterations and at the last, NaN elsewhere):
    fraction of `eval_batch` on-policy (epsilon = 0) conditional samples that reach their uniformly
    drawn outcome. Raises ValueError for an invalid config before anything is compiled.
    """
    config.validate()
    if env is None:
        if config.env not in GFN_ENVS:
            raise ValueError(f"Unknown env {config.env!r}; choose one of {sorted(GFN_ENVS)}.")
        env, env_params = GFN_ENVS[config.env](**dict(config.env_kwargs))
    init_net, apply = make_conditional_policy(env, config.hidden)

    def success_rate(key, params):
        k1, k2 = jax.random.split(key)
        y = sample_outcomes(k1, env, config.eval_batch)
        tr = conditional_rollout(k2, params, env, env_params, apply, y)
        return jnp.mean(jnp.all(tr.terminal_obj == y, -1))

    def optimizer(hp):
        return optax.inject_hyperparams(optax.adam)(learning_rate=hp.lr)

    def init(key, hp: OCGFNHParams) -> OCGFNState:
        k0, k_run = jax.random.split(key)
        params = init_net(k0)
        return OCGFNState(params, optimizer(hp).init(params), jnp.zeros((), jnp.int32), k_run)

    def run(state: OCGFNState, hp: OCGFNHParams, *, num_updates: int):
        tx = optimizer(hp)

        def it(state, _):
            params, opt, i = state.params, state.opt_state, state.step
            k1, k2, k3 = jax.random.split(iteration_key(state.key, i), 3)
            y = sample_outcomes(k1, env, config.batch_size)
            tr = conditional_rollout(k2, jax.lax.stop_gradient(params), env, env_params, apply, y,
                                     epsilon=hp.epsilon)
            tr = jax.lax.stop_gradient(tr)
            (loss, m), g = jax.value_and_grad(relabelled_loss, has_aux=True)(
                params, env, env_params, apply, tr, hp.tb_coef
            )
            up, opt = tx.update(g, opt, params)
            params = optax.apply_updates(params, up)
            do = (i % config.eval_every == 0) | (i == config.num_iterations - 1)
            succ = jax.lax.cond(do, lambda: success_rate(k3, params), lambda: jnp.float32(jnp.nan))
            m = {**m, "pretrain/loss": loss, "pretrain/success": succ,
                 "pretrain/hit_rate_train": jnp.mean(jnp.all(tr.terminal_obj == y, -1))}
            return OCGFNState(params, opt, i + 1, state.key), m

        return jax.lax.scan(it, state, None, length=num_updates)

    def train(key, hp: OCGFNHParams):
        return run(init(key, hp), hp, num_updates=config.num_iterations)

    return OCGFNRecipe(config=config, num_updates=config.num_iterations, env=env,
                       env_params=env_params, apply=apply, success_rate=success_rate, init=init,
                       run=run, train=train)
