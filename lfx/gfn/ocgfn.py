"""Outcome-conditioned GFlowNet (OC-GFN): reward-free pre-training.

Pan et al. 2024, "Pre-Training and Fine-Tuning Generative Flow Networks" (arXiv:2310.03419). An
OC-GFN is a GFlowNet conditioned on an outcome y (a terminal object) with the conditional reward

    R(x | y) = 1[x = y],   so   Z(y) = 1  and  log F(x | y) + log PF(exit | x, y) = 0 at x = y.

Two pre-training methods (`OCGFNConfig.method`):

* "paper" (the default): the paper's contrastive pre-training with outcome teleportation. Each
  iteration (1) trains a reward-free GAFlowNet explorer (`lfx.gfn.gaflownet`: TB on the RND
  intrinsic reward) and takes its B trajectories as POSITIVES, each conditioned on the object it
  reached (y = x, R(x|y) = 1); (2) draws B outcomes from those positives (a random permutation of
  the explorer's terminal objects) and rolls out the OC-GFN PF(.|., y) on them (epsilon-uniform
  exploration): the trajectories that miss y are the NEGATIVES (R(x|y) = 0, log 0 replaced by the
  floor `log_r_fail`), those that reach y count as positives; (3) minimises the outcome-
  teleportation loss (`lfx.gfn.teleport`) on both batches, L = L_OT(explorer) + neg_coef *
  L_OT(on-policy). Confirmed from public reviews of the paper: positives from a GAFlowNet explorer,
  failed on-policy trajectories as negatives with reward 0, outcome teleportation. Ours: where the
  on-policy outcomes come from (the explorer's batch), the floor for log 0, the weights, the
  state-level (not edge-level) intrinsic reward, sharing epsilon between both samplers.
* "relabel" (lfx's first version; the documented figures before issue 19 use it): draw outcomes
  uniformly, roll out PF(.|., y), relabel every trajectory with the outcome it reached (hindsight,
  y' := x, reward 1: positives only) and minimise conditional DB plus `tb_coef` * TB with the known
  log Z(y') = 0.

Both evaluate the relabelled / conditioned batch with one network pass over the visited states
under the training condition; the sampling pass carries no gradient.

At the optimum, PF(. | ., y) reaches y with probability 1 (the DB/TB residuals at zero on every path
into y make PF(tau | y) = PB(tau | y), whose sum over paths into y is 1), which the success-rate
metric measures: the fraction of conditional samples whose terminal object equals y (y uniform).

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

from lfx.gfn import gaflownet, losses
from lfx.gfn.base import GFNEnv, GFNState
from lfx.gfn.networks import PolicyOutput, make_policy, mlp_apply, mlp_init
from lfx.gfn.recipe import NON_NEGATIVE, POSITIVE, UNIT, check_hparams, iteration_key
from lfx.gfn.rollout import forward_rollout, masked_log_softmax
from lfx.gfn.teleport import outcome_log_reward, teleported_detailed_balance
from lfx.gfn.train import GFN_ENVS

METHODS = ("paper", "relabel")


@dataclasses.dataclass(frozen=True)
class OCGFNConfig:
    """Static settings. env: a key of `lfx.gfn.train.GFN_ENVS`, env_kwargs its arguments;
    method: "paper" (GAFlowNet explorer, negatives, outcome teleportation) or "relabel" (hindsight
    relabelling, DB + TB; the module docstring); eval_every: success rate every N iterations (and at
    the last); eval_batch: samples it uses. explorer_hidden: the GAFlowNet explorer's MLP (empty:
    `hidden`); rnd_hidden, rnd_latent: its RND nets (method "paper" only)."""

    env: str = "hypergrid"
    env_kwargs: tuple = (("dim", 2), ("height", 8))
    method: str = "paper"
    batch_size: int = 64
    num_iterations: int = 2000
    hidden: tuple = (256, 256)
    eval_every: int = 100
    eval_batch: int = 256
    explorer_hidden: tuple = ()
    rnd_hidden: int = 256
    rnd_latent: int = 128

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"OCGFNConfig.method must be one of {METHODS}, got {self.method!r}.")
        for name in ("batch_size", "num_iterations", "eval_every", "eval_batch", "rnd_hidden", "rnd_latent"):
            if getattr(self, name) < 1:
                raise ValueError(f"OCGFNConfig.{name} must be >= 1, got {getattr(self, name)}.")


NON_POSITIVE = (lambda v: v <= 0, "must be <= 0")


@struct.dataclass
class OCGFNHParams:
    """Traced. lr (Adam, OC-GFN), epsilon (uniform-action exploration of every sampler);
    method "relabel": tb_coef (weight of TB next to DB); method "paper": explorer_lr,
    explorer_logz_lr (the GAFlowNet explorer's Adam steps for its network and log Z), rnd_lr (its
    RND predictor), rnd_beta (intrinsic reward scale beta), log_r_fail (log R(x|y) of a failed
    trajectory: the finite floor for log 0), neg_coef (weight of the on-policy batch's loss)."""

    lr: float = 1e-3
    epsilon: float = 0.1
    tb_coef: float = 1.0
    explorer_lr: float = 1e-3
    explorer_logz_lr: float = 0.1
    rnd_lr: float = 1e-3
    rnd_beta: float = 0.1
    log_r_fail: float = -5.0
    neg_coef: float = 1.0

    def validate(self) -> None:
        check_hparams(self, {"lr": POSITIVE, "epsilon": UNIT, "tb_coef": NON_NEGATIVE,
                             "explorer_lr": POSITIVE, "explorer_logz_lr": POSITIVE, "rnd_lr": POSITIVE,
                             "rnd_beta": POSITIVE, "log_r_fail": NON_POSITIVE, "neg_coef": NON_NEGATIVE})


@struct.dataclass
class OCGFNState:
    """params of the conditional policy; key: the run key; step: iterations done; explorer: the
    GAFlowNet explorer's {"net", "log_z", "rnd"} params, optimiser state and fixed RND target
    (method "paper"; a placeholder array for "relabel")."""

    params: Any
    opt_state: Any
    step: jax.Array
    key: jax.Array
    explorer: Any = None
    explorer_opt: Any = None
    rnd_target: Any = None


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


def conditional_terms(params, env, env_params, apply, tr, y):
    """(log F(s_t|y), log PF(a_t|s_t, y)), both [T, B], of the trajectories `tr` under outcomes y [B, L].

    One network pass over the T * B stored states with the condition y (gradient flows to params);
    log PF is 0 at invalid steps.
    """
    T, B = tr.valid.shape
    y_obs = outcome_obs(env, env_params, y)
    flat = tr.obj.reshape(T * B, -1)
    st = GFNState(time=jnp.zeros((T * B,), jnp.int32), obj=flat, done=jnp.zeros((T * B,), bool))
    obs = jax.vmap(env.get_obs, in_axes=(0, None))(st, env_params)
    fmask = jax.vmap(env.forward_mask, in_axes=(0, None))(st, env_params)
    out = apply(params, obs, jnp.broadcast_to(y_obs[None], (T, B, y_obs.shape[-1])).reshape(T * B, -1))
    logp = masked_log_softmax(out.fwd_logits, fmask)
    log_pf = jnp.take_along_axis(logp, tr.actions.reshape(-1, 1), -1).reshape(T, B)
    return out.log_flow.reshape(T, B), jnp.where(tr.valid, log_pf, 0.0)


def relabelled_loss(params, env, env_params, apply, tr, tb_coef=1.0):
    """Conditional DB + tb_coef * TB (log Z(x) = 0) of trajectories relabelled with their outcome x.

    Args:
      tr: `Trajectories` (sampled under any condition; only states, actions, masks and log PB are
        used). Returns `(loss, metrics)`.
    """
    T, B = tr.valid.shape
    log_flow, log_pf = conditional_terms(params, env, env_params, apply, tr, tr.terminal_obj)
    zeros_r = jnp.zeros((T, B))  # log R(x | x) = 0
    db, _ = losses.detailed_balance(log_flow, log_pf, tr.log_pb, zeros_r, tr.valid, tr.is_exit)
    tb, _ = losses.trajectory_balance(0.0, log_pf, tr.log_pb, jnp.zeros((B,)), tr.valid)
    return db + tb_coef * tb, {"pretrain/db": db, "pretrain/tb": tb}


def teleport_loss(params, env, env_params, apply, tr, y, log_r_outcome):
    """Outcome-teleportation loss of trajectories `tr` conditioned on outcomes y ([B, L]) whose
    outcome rewards are `log_r_outcome` ([B]); `(loss, metrics)` of `teleported_detailed_balance`."""
    log_flow, log_pf = conditional_terms(params, env, env_params, apply, tr, y)
    return teleported_detailed_balance(log_flow, log_pf, tr.log_pb, log_r_outcome, tr.valid, tr.is_exit)


def paper_loss(params, env, env_params, apply, pos, onp, y_onp, log_r_fail, neg_coef):
    """L_OT(explorer positives, y = x, R = 1) + neg_coef * L_OT(on-policy batch under y_onp).

    pos, onp: `Trajectories` (gradient stopped by the caller); y_onp: [B, L] outcomes of `onp`.
    """
    B = pos.valid.shape[1]
    l_pos, _ = teleport_loss(params, env, env_params, apply, pos, pos.terminal_obj, jnp.zeros((B,)))
    log_r = outcome_log_reward(onp.terminal_obj, y_onp, log_r_fail)
    l_onp, _ = teleport_loss(params, env, env_params, apply, onp, y_onp, log_r)
    return l_pos + neg_coef * l_onp, {"pretrain/teleport_pos": l_pos, "pretrain/teleport_onpolicy": l_onp}


def make_explorer(env: GFNEnv, config: OCGFNConfig):
    """The reward-free GAFlowNet explorer: `(init(key), apply, loss(eparams, target, key, hp))`.

    `loss` samples `config.batch_size` trajectories from the explorer (epsilon-uniform exploration),
    returns `(TB(intrinsic) + L_RND, (trajectories, metrics))`; differentiable in eparams.
    """
    init_net, apply = make_policy(env.obs_size, env.num_actions, env.num_backward_actions,
                                  hidden=tuple(config.explorer_hidden or config.hidden))

    def init(key):
        kn, kr = jax.random.split(key)
        rnd = gaflownet.rnd_init(kr, env.obs_size, config.rnd_hidden, config.rnd_latent)
        return {"net": init_net(kn), "log_z": jnp.zeros((), jnp.float32), "rnd": rnd["predictor"]}, rnd["target"]

    def loss(eparams, target, key, env_params, hp):
        tr = forward_rollout(key, eparams["net"], env, env_params, apply, config.batch_size, epsilon=hp.epsilon)
        x_obs = outcome_obs(env, env_params, tr.terminal_obj)
        log_ri = gaflownet.intrinsic_log_reward(eparams["rnd"], target, x_obs, hp.rnd_beta)
        tb, m = gaflownet.augmented_trajectory_balance(
            eparams["log_z"], tr.log_pf, tr.log_pb, jnp.full(log_ri.shape, -jnp.inf), log_ri, tr.valid)
        T, B = tr.valid.shape
        flat = tr.obj.reshape(T * B, -1)
        st = GFNState(time=jnp.zeros((T * B,), jnp.int32), obj=flat, done=jnp.zeros((T * B,), bool))
        obs = jax.vmap(env.get_obs, in_axes=(0, None))(st, env_params)
        visited = jnp.concatenate([obs, x_obs], 0)
        mask = jnp.concatenate([tr.valid.reshape(-1), jnp.ones((B,), bool)], 0)
        rnd = gaflownet.rnd_loss(eparams["rnd"], target, visited, mask)
        return tb + rnd, (jax.lax.stop_gradient(tr), {**m, "explorer/tb": tb, "explorer/rnd": rnd,
                                                       "explorer/logz": eparams["log_z"]})

    return init, apply, loss


def explorer_optimizer(hp: OCGFNHParams) -> optax.GradientTransformation:
    """Adam on the explorer's network (explorer_lr), log Z (explorer_logz_lr) and RND predictor (rnd_lr)."""
    sub = lambda lr: optax.inject_hyperparams(optax.adam)(learning_rate=lr)  # noqa: E731
    labels = lambda p: {"net": jax.tree.map(lambda _: "net", p["net"]), "log_z": "log_z",  # noqa: E731
                        "rnd": jax.tree.map(lambda _: "rnd", p["rnd"])}
    return optax.multi_transform({"net": sub(hp.explorer_lr), "log_z": sub(hp.explorer_logz_lr),
                                  "rnd": sub(hp.rnd_lr)}, labels)


def make_train(config: OCGFNConfig, env: GFNEnv | None = None, env_params: Any = None) -> OCGFNRecipe:
    """Reward-free OC-GFN pre-training as an `OCGFNRecipe`; `env`/`env_params` override config.env.

    metrics["pretrain/success"] (every `eval_every` iterations and at the last, NaN elsewhere):
    fraction of `eval_batch` on-policy (epsilon = 0) conditional samples that reach their uniformly
    drawn outcome. "pretrain/hit_rate_train": the fraction of the iteration's conditional rollouts
    that reached their outcome (method "paper": 1 - the fraction of negatives). Raises ValueError
    for an invalid config before anything is compiled.
    """
    config.validate()
    if env is None:
        if config.env not in GFN_ENVS:
            raise ValueError(f"Unknown env {config.env!r}; choose one of {sorted(GFN_ENVS)}.")
        env, env_params = GFN_ENVS[config.env](**dict(config.env_kwargs))
    init_net, apply = make_conditional_policy(env, config.hidden)
    paper = config.method == "paper"
    if paper:
        init_explorer, _, explorer_loss = make_explorer(env, config)

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
        placeholder = jnp.zeros((1,), jnp.float32)
        explorer, eopt, target = placeholder, placeholder, placeholder
        if paper:  # a separate key stream: the OC-GFN's init is the same under either method
            explorer, target = init_explorer(jax.random.fold_in(k0, 1))
            eopt = explorer_optimizer(hp).init(explorer)
        return OCGFNState(params, optimizer(hp).init(params), jnp.zeros((), jnp.int32), k_run,
                          explorer, eopt, target)

    def relabel_step(state, hp, k1, k2):
        y = sample_outcomes(k1, env, config.batch_size)
        tr = conditional_rollout(k2, jax.lax.stop_gradient(state.params), env, env_params, apply, y,
                                 epsilon=hp.epsilon)
        tr = jax.lax.stop_gradient(tr)
        (loss, m), g = jax.value_and_grad(relabelled_loss, has_aux=True)(
            state.params, env, env_params, apply, tr, hp.tb_coef)
        return loss, m, g, jnp.mean(jnp.all(tr.terminal_obj == y, -1)), state

    def paper_step(state, hp, k1, k2):
        k_exp, k_perm = jax.random.split(k1)
        (eloss, (pos, em)), eg = jax.value_and_grad(explorer_loss, has_aux=True)(
            state.explorer, state.rnd_target, k_exp, env_params, hp)
        eup, eopt = explorer_optimizer(hp).update(eg, state.explorer_opt, state.explorer)
        explorer = optax.apply_updates(state.explorer, eup)
        y = pos.terminal_obj[jax.random.permutation(k_perm, config.batch_size)]
        onp = conditional_rollout(k2, jax.lax.stop_gradient(state.params), env, env_params, apply, y,
                                  epsilon=hp.epsilon)
        onp = jax.lax.stop_gradient(onp)
        (loss, m), g = jax.value_and_grad(paper_loss, has_aux=True)(
            state.params, env, env_params, apply, pos, onp, y, hp.log_r_fail, hp.neg_coef)
        m = {**m, **em, "explorer/loss": eloss}
        return loss, m, g, jnp.mean(jnp.all(onp.terminal_obj == y, -1)), state.replace(
            explorer=explorer, explorer_opt=eopt)

    def run(state: OCGFNState, hp: OCGFNHParams, *, num_updates: int):
        tx = optimizer(hp)

        def it(state, _):
            i = state.step
            k1, k2, k3 = jax.random.split(iteration_key(state.key, i), 3)
            step = paper_step if paper else relabel_step
            loss, m, g, hit, state = step(state, hp, k1, k2)
            up, opt = tx.update(g, state.opt_state, state.params)
            params = optax.apply_updates(state.params, up)
            do = (i % config.eval_every == 0) | (i == config.num_iterations - 1)
            succ = jax.lax.cond(do, lambda: success_rate(k3, params), lambda: jnp.float32(jnp.nan))
            m = {**m, "pretrain/loss": loss, "pretrain/success": succ, "pretrain/hit_rate_train": hit}
            return state.replace(params=params, opt_state=opt, step=i + 1), m

        return jax.lax.scan(it, state, None, length=num_updates)

    def train(key, hp: OCGFNHParams):
        return run(init(key, hp), hp, num_updates=config.num_iterations)

    return OCGFNRecipe(config=config, num_updates=config.num_iterations, env=env,
                       env_params=env_params, apply=apply, success_rate=success_rate, init=init,
                       run=run, train=train)
