"""Contrastive Preference Learning (CPL): a policy learned from segment preferences, without RL.

Hejna, Rafailov, Sikchi, Finn, Niekum, Knox, Sadigh 2023, "Contrastive Preference Learning: Learning
from Human Feedback without RL", arXiv:2310.13639, Eq. 5 and Sec. 3.2 (the conservative bias). Under
the regret preference model with the optimal advantage A*(s, a) = alpha log pi*(a|s), the
probability that the chosen segment sigma+ is preferred to the rejected sigma- is

    P[sigma+ > sigma-] = exp(S+) / (exp(S+) + exp(lam S-)),   S = Σ_{t<L} gamma^t alpha log pi(a_t | s_t)

and CPL minimises its negative log-likelihood over labelled pairs:

    L_CPL(sigma+, sigma-) = -log sigmoid(S+ - lam S-) = softplus(lam S- - S+)

lam in (0, 1] is the conservative bias (lam < 1 down-weights the rejected segment); with lam = 1 this
is a logistic loss on S+ - S-. Matching the authors' code (github jhejna/cpl,
`research/algs/cpl.py` `CPL._get_cpl_loss` and `biased_bce_with_logits`):

* the policy is a deterministic tanh MLP mu(s) in [-1, 1]^A (`ContinuousMLPActor`, output Tanh)
  and log pi(a|s) = -||mu(s) - a||^2 ("for independent gaussian with unit var, logprob reduces to
  MSE"; the normaliser is dropped, which matters when lam != 1);
* S sums alpha log pi over the segment without discount (their `segment_adv = adv.sum(-1)`):
  `gamma = 1` here reproduces it, gamma < 1 is the paper's Eq. 5;
* the first `bc_steps` gradient steps are behaviour cloning, L_BC = mean_{b,t} -log pi(a_t|s_t)
  over both segments of each pair; then Adam is re-initialised, the learning rate warms up linearly
  over `warmup_steps` and the loss is L_CPL + bc_weight L_BC ("CPL (BC)": bc_weight 1, lam 1);
* "train/accuracy" is the fraction of pairs with S+ > S- (unbiased scores).

`objective="sft"` is the paper's SFT baseline on the same pairs (the authors' `BehaviorCloning` with
`bc_data="pos"`): the same `bc_steps` of BC on all segments, then BC on the chosen segments only.

Authors' MetaWorld state-based hyperparameters (`configs/mw_state_dense/cpl.yaml`, `cpl_bc.yaml`,
`sft.yaml`): alpha 0.1, lam (`contrastive_bias`) 0.5 (CPL-BC: 1.0, bc_coeff 1.0), Adam lr 1e-4,
batch 96 pairs of 64-step segments, 500k gradient steps of which bc_steps = 200k, linear warmup
10k steps, actor MLP (512, 512) with dropout 0.25 and orthogonal init (no dropout here: lfx's
actor has none), 2500 segments paired at random each batch (`mode: rank`).

    recipe = make_train(CPLConfig(segment_length=64))
    prefs = cpl_segments.make_preferences(data, oracle, num_pairs=2500, segment_length=64, seed=0)
    state, metrics = recipe.train(key, HParams(), prefs)       # metrics[name]: [num_updates]
    over_seeds = jax.vmap(recipe.train, (0, None, None))

An update is `gradient_steps` gradient steps, each on `batch_size` pairs drawn uniformly with
replacement; the run is one `lax.scan` (`lfx.rl.loop.run_updates`) and, with `eval_every > 0`,
evaluates the greedy policy mu(s) (mapped affinely from [-1, 1] to the env's bounds) on the JAX env
every `eval_every` updates ("eval/episode_return", "eval/fresh"). Shapes: B = batch_size pairs,
L = segment_length, D observation size, A action dimension.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from lfx import envs
from lfx.experiment.checks import HALF_OPEN_UNIT, NON_NEGATIVE, POSITIVE, check_ranges
from lfx.offline.networks import DeterministicActor
from lfx.offline.recipe import env_spec
from lfx.offline.types import Spec
from lfx.pref.cpl_segments import Preferences
from lfx.rl import evaluation, loop

OBJECTIVES = ("cpl", "sft")


def cpl_loss(chosen_logp: jax.Array, rejected_logp: jax.Array, *, alpha: Any, lam: Any, gamma: Any = 1.0
             ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The CPL loss of each pair (module docstring).

    Args:
      chosen_logp, rejected_logp: [B, L] log pi(a_t | s_t) along the chosen / rejected segment.
      alpha: temperature of the advantage alpha log pi. lam: conservative bias in (0, 1].
      gamma: discount of step t within the segment (gamma^t; 1 as the authors' code).

    Returns:
      loss [B] = softplus(lam S- - S+), and per-pair metrics [B]: "accuracy" (1 where S+ > S-),
      "score_chosen" S+, "score_rejected" S-.
    """
    discount = gamma ** jnp.arange(chosen_logp.shape[-1], dtype=chosen_logp.dtype)
    s_pos = alpha * jnp.sum(discount * chosen_logp, axis=-1)
    s_neg = alpha * jnp.sum(discount * rejected_logp, axis=-1)
    loss = jax.nn.softplus(lam * s_neg - s_pos)
    return loss, {"accuracy": (s_pos > s_neg).astype(loss.dtype), "score_chosen": s_pos, "score_rejected": s_neg}


def mse_log_prob(mean: jax.Array, actions: jax.Array) -> jax.Array:
    """The authors' log pi(a|s) = -||mu(s) - a||^2 over the action axis: [..., A] -> [...]."""
    return -jnp.sum(jnp.square(mean - actions), axis=-1)


@struct.dataclass
class HParams:
    """Traced hyperparameters of CPL (defaults: the authors' MetaWorld state-based `cpl.yaml`).

    lr: Adam learning rate. alpha: advantage temperature (> 0). lam: conservative bias in (0, 1].
    bc_weight: weight of L_BC added to L_CPL after pretraining (>= 0; CPL (BC): 1).
    gamma: in-segment discount in (0, 1] (1: undiscounted, as the code).
    """

    lr: float = 1e-4
    alpha: float = 0.1
    lam: float = 0.5
    bc_weight: float = 0.0
    gamma: float = 1.0

    def validate(self) -> None:
        """Raises ValueError for a concrete value out of range (skipped when traced)."""
        check_ranges(self, {"lr": POSITIVE, "alpha": POSITIVE, "lam": HALF_OPEN_UNIT,
                            "bc_weight": NON_NEGATIVE, "gamma": HALF_OPEN_UNIT})


@dataclasses.dataclass(frozen=True)
class CPLConfig:
    """Static settings of a CPL run.

    objective: "cpl", or "sft" (BC on the chosen segments after pretraining: the paper's baseline).
    segment_length: L, the steps of each segment (the preference data must have it).
    batch_size: pairs per gradient step. total_gradient_steps / gradient_steps: the run's gradient
      steps, and those per update (one metrics row, one possible evaluation).
    bc_steps: gradient steps of BC pretraining on all segments before the objective.
    warmup_steps: linear learning-rate warmup after pretraining (0: none).
    hidden_sizes: the actor's MLP widths.
    eval_every: evaluate after every this many updates (0: never); eval_episodes episodes of at most
      eval_max_steps steps (0: the env's episode length).
    """

    env_name: str = "Pendulum-v1"
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    objective: str = "cpl"
    segment_length: int = 64
    batch_size: int = 96
    total_gradient_steps: int = 500_000
    gradient_steps: int = 1000
    bc_steps: int = 200_000
    warmup_steps: int = 10_000
    hidden_sizes: tuple[int, ...] = (512, 512)
    eval_every: int = 5
    eval_episodes: int = 25
    eval_max_steps: int = 0

    @property
    def num_updates(self) -> int:
        return self.total_gradient_steps // self.gradient_steps

    @property
    def steps_per_update(self) -> int:
        """Gradient steps per update (the x axis of the learning curves)."""
        return self.gradient_steps

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"CPLConfig.objective must be one of {OBJECTIVES}, got {self.objective!r}.")
        for name in ("segment_length", "batch_size", "total_gradient_steps", "gradient_steps", "eval_episodes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"CPLConfig.{name} must be positive, got {getattr(self, name)}.")
        for name in ("bc_steps", "warmup_steps", "eval_every", "eval_max_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"CPLConfig.{name} must be >= 0, got {getattr(self, name)}.")
        if not self.hidden_sizes or any(h <= 0 for h in self.hidden_sizes):
            raise ValueError(f"CPLConfig.hidden_sizes must be non-empty positive widths, got {self.hidden_sizes}.")
        if self.total_gradient_steps % self.gradient_steps:
            raise ValueError(f"gradient_steps={self.gradient_steps} must divide total_gradient_steps="
                             f"{self.total_gradient_steps}.")
        if self.eval_every > self.num_updates:
            raise ValueError(f"eval_every={self.eval_every} updates is more than the run's {self.num_updates}: "
                             f"nothing would be evaluated.")
        envs.registry.check_name(self.env_name)


@struct.dataclass
class CPLState:
    """What a CPL run carries between updates (the checkpointed state; the preferences are not in it)."""

    params: Any
    opt_state: Any
    key: jax.Array
    step: jax.Array  # [] int32 gradient steps done
    update_idx: jax.Array  # [] int32
    eval_return: jax.Array  # [] float32


class CPLRecipe(NamedTuple):
    config: CPLConfig
    HParams: type
    spec: Spec
    env: Any
    env_params: Any
    actor: DeterministicActor
    init: Callable[..., CPLState]  # (key, hparams, prefs) -> state
    update: Callable[..., tuple[CPLState, dict[str, jax.Array]]]
    run: Callable[..., tuple[CPLState, dict[str, jax.Array]]]  # (state, hparams, prefs, *, num_updates)
    train: Callable[..., tuple[CPLState, dict[str, jax.Array]]]  # (key, hparams, prefs)
    evaluate: Callable[[CPLState], tuple[CPLState, jax.Array]]
    num_updates: int


def check_preferences(prefs: Preferences, config: CPLConfig, spec: Spec) -> None:
    """Refuses (ValueError) preference data whose shapes do not fit the config and env."""
    shape = prefs.chosen_obs.shape
    if shape[-2] != config.segment_length:
        raise ValueError(f"The preferences have segments of {shape[-2]} steps, config.segment_length is "
                         f"{config.segment_length}.")
    if shape[-1] != spec.obs_dim or prefs.chosen_actions.shape[-1] != spec.action_dim:
        raise ValueError(f"The preferences have observations of size {shape[-1]} and actions of size "
                         f"{prefs.chosen_actions.shape[-1]}; {config.env_name} has {spec.obs_dim} and "
                         f"{spec.action_dim}.")


def init_state(key: jax.Array, hparams: HParams, prefs: Preferences, *, config: CPLConfig, spec: Spec,
               actor: DeterministicActor) -> CPLState:
    """A fresh actor and Adam state."""
    del hparams
    check_preferences(prefs, config, spec)
    key, k_actor = jax.random.split(key)
    params = actor.init(k_actor, jnp.zeros((spec.obs_dim,)))
    return CPLState(params=params, opt_state=optax.scale_by_adam().init(params), key=key, step=jnp.int32(0),
                    update_idx=jnp.int32(0), eval_return=jnp.float32(0.0))


def pair_losses(params: Any, batch: Preferences, hparams: HParams, *, objective: str,
                actor: DeterministicActor) -> tuple[jax.Array, jax.Array, dict[str, jax.Array]]:
    """(pretraining loss L_BC [], the objective's loss [], metrics) on one batch of pairs."""
    chosen = mse_log_prob(actor.apply(params, batch.chosen_obs), batch.chosen_actions)  # [B, L]
    rejected = mse_log_prob(actor.apply(params, batch.rejected_obs), batch.rejected_actions)
    bc = -0.5 * (jnp.mean(chosen) + jnp.mean(rejected))
    per_pair, m = cpl_loss(chosen, rejected, alpha=hparams.alpha, lam=hparams.lam, gamma=hparams.gamma)
    cpl = jnp.mean(per_pair)
    main = cpl + hparams.bc_weight * bc if objective == "cpl" else -jnp.mean(chosen)
    return bc, main, {"train/cpl_loss": cpl, "train/bc_loss": bc, "train/accuracy": jnp.mean(m["accuracy"])}


def learning_rate(step: jax.Array, hparams: HParams, config: CPLConfig) -> jax.Array:
    """lr during pretraining; after it a linear warmup from lr / warmup_steps to lr."""
    if config.warmup_steps == 0:
        return jnp.asarray(hparams.lr, jnp.float32)
    warm = jnp.minimum(1.0, (step - config.bc_steps + 1) / config.warmup_steps)
    return hparams.lr * jnp.where(step < config.bc_steps, 1.0, warm)


def gradient_step(state: CPLState, key: jax.Array, hparams: HParams, prefs: Preferences, *, config: CPLConfig,
                  actor: DeterministicActor) -> tuple[CPLState, dict[str, jax.Array]]:
    """One Adam step on `batch_size` pairs: L_BC while pretraining, the objective after (Adam re-initialised
    at the switch, as the authors' code)."""
    idx = jax.random.randint(key, (config.batch_size,), 0, prefs.num_pairs)
    batch = jax.tree.map(lambda x: x[idx], prefs)
    pretraining = state.step < config.bc_steps

    def total(params):
        bc, main, metrics = pair_losses(params, batch, hparams, objective=config.objective, actor=actor)
        loss = jnp.where(pretraining, bc, main)
        return loss, {**metrics, "train/loss": loss}

    grads, metrics = jax.grad(total, has_aux=True)(state.params)
    adam = optax.scale_by_adam()
    fresh = adam.init(state.params)
    opt_state = jax.tree.map(lambda f, o: jnp.where(state.step == config.bc_steps, f, o), fresh, state.opt_state)
    direction, opt_state = adam.update(grads, opt_state, state.params)
    lr = learning_rate(state.step, hparams, config)
    params = jax.tree.map(lambda p, d: p - lr * d, state.params, direction)
    metrics["train/lr"] = lr
    return state.replace(params=params, opt_state=opt_state, step=state.step + 1), metrics


def update_step(state: CPLState, hparams: HParams, prefs: Preferences, *, config: CPLConfig,
                actor: DeterministicActor) -> tuple[CPLState, dict[str, jax.Array]]:
    """`gradient_steps` gradient steps; metrics are their means."""
    key, k_steps = jax.random.split(state.key)
    step = functools.partial(gradient_step, hparams=hparams, prefs=prefs, config=config, actor=actor)
    state, metrics = jax.lax.scan(step, state, jax.random.split(k_steps, config.gradient_steps))
    metrics = jax.tree.map(jnp.mean, metrics)
    state = state.replace(key=key, update_idx=state.update_idx + 1)
    metrics["train/gradient_steps"] = state.step
    return state, metrics


def evaluate_state(state: CPLState, *, config: CPLConfig, actor: DeterministicActor, env: Any, env_params: Any,
                   low: np.ndarray, high: np.ndarray) -> tuple[CPLState, jax.Array]:
    """Mean return of `eval_episodes` episodes of the greedy policy mu(s) on the raw env."""
    key, k_eval = jax.random.split(state.key)
    max_steps = config.eval_max_steps or int(env_params.max_steps_in_episode)

    def act(obs, key):
        del key
        a = actor.apply(state.params, obs)
        return jnp.asarray(low) + (a + 1.0) * 0.5 * jnp.asarray(high - low)

    returns, _ = evaluation.evaluate(k_eval, act, env, env_params, num_episodes=config.eval_episodes,
                                     max_steps=max_steps)
    return state.replace(key=key), jnp.mean(returns)


def make_train(config: CPLConfig) -> CPLRecipe:
    """Builds the recipe for a static config; validates it before anything is compiled."""
    config.validate()
    env, env_params = envs.make(config.env_name, **dict(config.env_kwargs))
    spec, low, high = env_spec(env, env_params)
    if spec.discrete:
        raise ValueError(f"CPL here needs continuous actions; {config.env_name} has discrete ones.")
    actor = DeterministicActor(spec.action_dim, tuple(config.hidden_sizes))
    init = functools.partial(init_state, config=config, spec=spec, actor=actor)
    update = functools.partial(update_step, config=config, actor=actor)
    evaluate = functools.partial(evaluate_state, config=config, actor=actor, env=env, env_params=env_params,
                                 low=low, high=high)
    run = functools.partial(loop.run_updates, update=update, evaluate=evaluate, eval_every=config.eval_every)
    train = functools.partial(loop.train_run, init=init, run=run, num_updates=config.num_updates)
    return CPLRecipe(config, HParams, spec, env, env_params, actor, init, update, run, train, evaluate,
                     config.num_updates)
