"""Dichotomy of Control (DoC) and return-conditioned supervised learning (RCSL) on one-step tasks.

Yang, Schuurmans, Abbeel & Nachum 2023, "Dichotomy of Control: Separating What You Can Control from What
You Cannot", arXiv:2210.13435. RCSL (Decision Transformer's principle, Sec. 3) fits pi(a | s, R) to the
data's (s, a, return-to-go R) by maximum likelihood and acts with pi(a | s, R*) for a target R*. In a
stochastic task a high R* picks the actions that were *lucky*, not the ones that are good in
expectation. DoC (Sec. 4, Eq. 5-7) conditions pi on a latent z of the future, z ~ q(z | s, a, R), and
constrains z to carry no information about the environment's randomness,
MI(r, s'; z | s, a) = 0, so that a value V(z) of z is an expectation the policy can achieve.

The losses are those of google-research `dichotomy_of_control/models/tabular_sdt.py`
(`TabularSDT.train_step`), the code behind the paper's bandit (Sec. 5.1), with one network per table:

    z_b  = onehot(z ~ q(. | s, a, R)) + q - sg(q)       straight-through sample, K latents
    L_V  = -log p_V(R | s, z)                           categorical over return bins ("value_net")
    L_pi = -log pi(a | s, z)                            ("policy")
    e_r  = f(s, a, r, z)                                energy of each return bin r ("energy_net")
    L_E  = -e_R + log sum_r rho(r) exp(e_r)            rho: the data's frequency of each return bin
    L    = mean_b [L_V + L_pi + beta L_E] + lambda KL(sg(q(. | s, a, R)) || p(z | s))

Every head is linear in the (straight-through) one-hot z, `sum_k z_k head(s)[k]`, which is exactly the
code's `reduce_sum(z_preds[..., None] * gather(table, states))` when `hidden_sizes=()` (a Dense layer on
a one-hot state is a table), and a per-latent MLP head otherwise.

The mutual-information term, two readings (`Config.mi_mode`):
  "code": as released, L_E is minimised by f *and* by q jointly. Minimising it in q makes z predictive
    of R given (s, a), i.e. it raises the InfoNCE estimate of MI(R; z | s, a) instead of penalising it.
  "adversarial": the paper's constraint as a penalty: f minimises L_E with z held fixed (sg(z)): its
    optimum makes -L_E the conditional log-likelihood ratio log p(R | s, a, z) / rho(R), the contrastive
    MI estimate of Sec. 4.2; q minimises beta * (that estimate) = -beta L_E with f held fixed (sg(f)).
    Then, whenever z already determines a, q's part of L_V + beta L_E is (1 - beta) H(R | a, z): at
    beta = 1 (the code's default) encoding the luck costs nothing either way, for beta > 1 it is
    penalised.

The prior p(z | s) (`prior_weight` lambda; the code's neural `stochastic_decision_transformer_training.py`
adds KL(q || sg(p)) with the prior's gradient stopped; the tabular script accepts `--prior_weight` and
does not use it) is here fitted to the posterior, KL(sg(q) || p), so it changes nothing in q's training
and serves inference: DoC acts with the z among those the prior supports (p(z | s) >= `prior_min_prob`,
the code's 100 prior samples) whose value E_{p_V}[R | s, z] is nearest the target R*, and with the
largest value for R* = max (tabular_sdt `get_policy`: argmax_z p_V(R = max | s, z)); then a ~ pi(. | s, z*).

RCSL is `tabular_dt.py` (`TabularDT`): pi(a | s, R) over return bins, evaluated at the bin of R*.
Returns are binned as the code's `encode_rtg`, bin(R) = round((R - min) / (max - min) (num_returns - 1)),
clipped (the code's floor of (R - min) / (max - min) num_rtg leaves R = max outside the one-hot; in the
bandit both read 0 and 1 as bins 0 and 1).

No transformer: a one-step task has no history to attend over (the paper's bandit uses the tabular
models). Evaluation is one-step: at state 0, the exact expected return sum_a pi(a | s, .) mu_a.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from lfx.experiment.checks import NON_NEGATIVE, POSITIVE, check_ranges
from lfx.offline import stochastic_tasks
from lfx.offline.td3_bc import adam

MI_MODES = ("code", "adversarial")


@struct.dataclass
class HParams:
    """Traced hyperparameters (`run_tabular.py` flags: learning_rate 0.01, energy_weight 1, prior_weight 1)."""

    learning_rate: float = 0.01
    energy_weight: float = 1.0  # beta of the contrastive MI term
    prior_weight: float = 1.0  # lambda of KL(sg(q) || p)

    def validate(self) -> None:
        """Raises ValueError for a concrete value out of range (skipped when traced)."""
        check_ranges(self, {"learning_rate": POSITIVE, "energy_weight": NON_NEGATIVE, "prior_weight": NON_NEGATIVE})


@dataclasses.dataclass(frozen=True)
class Config:
    """Static settings (`run_tabular.py`: 10_000 steps of batch 64; `TabularSDT`: num_rtg 2, K = A * num_rtg).

    num_latents: K; 0 means num_actions * num_returns, the code's choice.
    hidden_sizes: widths of every head's MLP; () makes each head a table, as the code.
    prior_min_prob: latents below this prior probability are not candidates at inference.
    """

    num_states: int = 1
    num_actions: int = 2
    num_returns: int = 2
    min_return: float = 0.0
    max_return: float = 1.0
    num_latents: int = 0
    hidden_sizes: tuple[int, ...] = (32,)
    num_steps: int = 10_000
    batch_size: int = 64
    mi_mode: str = "code"
    prior_min_prob: float = 0.01

    @property
    def latents(self) -> int:
        return self.num_latents or self.num_actions * self.num_returns

    def validate(self) -> None:
        if self.mi_mode not in MI_MODES:
            raise ValueError(f"doc.Config.mi_mode must be one of {MI_MODES}, got {self.mi_mode!r}.")
        if min(self.num_states, self.num_actions, self.num_steps, self.batch_size, self.latents) < 1:
            raise ValueError(f"doc.Config sizes must be >= 1, got {self}.")
        if self.num_returns < 2 or not self.max_return > self.min_return:
            raise ValueError("doc.Config needs num_returns >= 2 and max_return > min_return.")


def return_bins(returns: jax.Array, config: Config) -> jax.Array:
    """Index of each return's bin, [...] float -> [...] int32 (bin centres `bin_values`)."""
    x = (returns - config.min_return) / (config.max_return - config.min_return) * (config.num_returns - 1)
    return jnp.clip(jnp.round(x), 0, config.num_returns - 1).astype(jnp.int32)


def bin_values(config: Config) -> jax.Array:
    """[R] the return each bin stands for."""
    return jnp.linspace(config.min_return, config.max_return, config.num_returns)


# ------------------------------------------------------------------------------------------- losses


def rcsl_loss(action_logits_ba: jax.Array, actions_b: jax.Array, mask_b: jax.Array | None = None) -> jax.Array:
    """RCSL / Decision Transformer: -E_b log pi(a_b | s_b, R_b) (`tabular_dt.py` `train_step`).

    Args:
      action_logits_ba: [B, A] logits of pi(. | s_b, R_b).
      actions_b: [B] int32 data actions.
      mask_b: optional [B] weights (a masked mean).
    """
    nll_b = optax.softmax_cross_entropy_with_integer_labels(action_logits_ba, actions_b)
    return _mean(nll_b, mask_b)


def straight_through(z_logits_bk: jax.Array, z_b: jax.Array) -> jax.Array:
    """onehot(z) + softmax(logits) - sg(softmax(logits)): forward the sample, backward its probabilities. [B, K]."""
    probs = jax.nn.softmax(z_logits_bk)
    return jax.nn.one_hot(z_b, z_logits_bk.shape[-1]) + probs - jax.lax.stop_gradient(probs)


def contrastive_energy_loss(energy_brk: jax.Array, z_bk: jax.Array, return_bins_b: jax.Array,
                            return_prior_r: jax.Array) -> jax.Array:
    """L_E = -e_R + log sum_r rho(r) exp(e_r), e_r = sum_k z_k f(s, a, r)[k]: [B] (`tabular_sdt.py`).

    Args:
      energy_brk: [B, R, K] f(s_b, a_b, r) for every return bin r, per latent.
      z_bk: [B, K] the (straight-through) one-hot latent.
      return_bins_b: [B] int32 the data's return bin R_b (the positive).
      return_prior_r: [R] rho, the data's frequency of each bin (the code's `rtg_prior`; the negatives'
        weights in `tfp.math.reduce_weighted_logsumexp`).
    """
    e_br = jnp.einsum("bk,brk->br", z_bk, energy_brk)
    pos_b = jnp.take_along_axis(e_br, return_bins_b[:, None], axis=1)[:, 0]
    neg_b = jax.nn.logsumexp(e_br, axis=-1, b=return_prior_r)
    return -pos_b + neg_b


def doc_loss(z_logits_bk: jax.Array, z_b: jax.Array, value_logits_bkr: jax.Array, action_logits_bka: jax.Array,
             energy_brk: jax.Array, prior_logits_bk: jax.Array, actions_b: jax.Array, return_bins_b: jax.Array,
             return_prior_r: jax.Array, mask_b: jax.Array | None = None, *, energy_weight: float = 1.0,
             prior_weight: float = 1.0, mi_mode: str = "code") -> tuple[jax.Array, dict[str, jax.Array]]:
    """DoC's loss (module docstring; `tabular_sdt.py` `TabularSDT.train_step`, arXiv:2210.13435 Eq. 5-7).

    L = mean_b [-log p_V(R_b | z_b) - log pi(a_b | z_b) + beta L_E] + lambda KL(sg(q) || p), with z_b the
    straight-through one-hot of the sample `z_b` of q(. | s_b, a_b, R_b). In "adversarial" mode the
    energy term is beta mean L_E(f, sg(z)) - beta mean L_E(sg(f), z): f fits the MI estimator, q lowers
    the estimate; the reported "energy_loss" is beta mean L_E in both modes.

    Args:
      z_logits_bk: [B, K] logits of q(z | s_b, a_b, R_b).
      z_b: [B] int32 a sample of q (no gradient).
      value_logits_bkr: [B, K, R] logits of p_V(R | s_b, z) for every latent.
      action_logits_bka: [B, K, A] logits of pi(a | s_b, z) for every latent.
      energy_brk: [B, R, K] the energies f(s_b, a_b, r, .).
      prior_logits_bk: [B, K] logits of p(z | s_b).
      actions_b, return_bins_b: [B] int32 data.
      return_prior_r: [R] rho.
    Returns:
      (loss, metrics) with "train/{value,action,energy,prior}_loss" and "train/loss".
    """
    z_bk = straight_through(z_logits_bk, z_b)
    value_loss = _mean(optax.softmax_cross_entropy_with_integer_labels(
        jnp.einsum("bk,bkr->br", z_bk, value_logits_bkr), return_bins_b), mask_b)
    action_loss = _mean(optax.softmax_cross_entropy_with_integer_labels(
        jnp.einsum("bk,bka->ba", z_bk, action_logits_bka), actions_b), mask_b)
    energy_b = contrastive_energy_loss(energy_brk, z_bk, return_bins_b, return_prior_r)
    energy_loss = energy_weight * _mean(energy_b, mask_b)
    if mi_mode == "code":
        energy_term = energy_loss
    elif mi_mode == "adversarial":
        sg = jax.lax.stop_gradient
        fit_f = _mean(contrastive_energy_loss(energy_brk, sg(z_bk), return_bins_b, return_prior_r), mask_b)
        penalise_q = -_mean(contrastive_energy_loss(sg(energy_brk), z_bk, return_bins_b, return_prior_r), mask_b)
        energy_term = energy_weight * (fit_f + penalise_q)
    else:
        raise ValueError(f"mi_mode must be one of {MI_MODES}, got {mi_mode!r}.")
    q_bk = jax.lax.stop_gradient(jax.nn.softmax(z_logits_bk))
    kl_b = jnp.sum(q_bk * (jnp.log(q_bk + 1e-12) - jax.nn.log_softmax(prior_logits_bk)), axis=-1)
    prior_loss = _mean(kl_b, mask_b)
    loss = value_loss + action_loss + energy_term + prior_weight * prior_loss
    metrics = {"train/loss": loss, "train/value_loss": value_loss, "train/action_loss": action_loss,
               "train/energy_loss": energy_loss, "train/prior_loss": prior_loss}
    return loss, metrics


def _mean(x_b: jax.Array, mask_b: jax.Array | None) -> jax.Array:
    if mask_b is None:
        return jnp.mean(x_b)
    return jnp.sum(x_b * mask_b) / jnp.maximum(jnp.sum(mask_b), 1e-8)


# ----------------------------------------------------------------------------------------- networks


class MLP(nn.Module):
    """ReLU MLP from concatenated one-hot inputs; `hidden_sizes=()` is a table (one Dense)."""

    out: int
    hidden_sizes: tuple[int, ...]

    @nn.compact
    def __call__(self, x):
        for h in self.hidden_sizes:
            x = nn.relu(nn.Dense(h)(x))
        return nn.Dense(self.out)(x)


def make_networks(config: Config) -> dict[str, MLP]:
    """DoC's heads: posterior q(s, a, R) -> [K]; value (s) -> [K, R]; policy (s) -> [K, A];
    energy (s, a) -> [R, K]; prior (s) -> [K]. RCSL's policy (s, R) -> [A]."""
    k, r, a, hs = config.latents, config.num_returns, config.num_actions, config.hidden_sizes
    return {"posterior": MLP(k, hs), "value": MLP(k * r, hs), "policy": MLP(k * a, hs), "energy": MLP(r * k, hs),
            "prior": MLP(k, hs), "rcsl": MLP(a, hs)}


def _inputs(config: Config, s_b, a_b=None, r_b=None):
    parts = [jax.nn.one_hot(s_b, config.num_states)]
    if a_b is not None:
        parts.append(jax.nn.one_hot(a_b, config.num_actions))
    if r_b is not None:
        parts.append(jax.nn.one_hot(r_b, config.num_returns))
    return jnp.concatenate(parts, axis=-1)


def init_rcsl(key: jax.Array, config: Config) -> Any:
    zero = jnp.zeros((1,), jnp.int32)
    return {"rcsl": make_networks(config)["rcsl"].init(key, _inputs(config, zero, r_b=zero))}


def init_doc(key: jax.Array, config: Config) -> Any:
    nets, zero = make_networks(config), jnp.zeros((1,), jnp.int32)
    inputs = {"posterior": _inputs(config, zero, zero, zero), "value": _inputs(config, zero),
              "policy": _inputs(config, zero), "energy": _inputs(config, zero, zero), "prior": _inputs(config, zero)}
    keys = jax.random.split(key, len(inputs))
    return {name: nets[name].init(k, x) for k, (name, x) in zip(keys, inputs.items(), strict=True)}


def rcsl_batch_loss(params, key, s_b, a_b, r_b, return_prior_r, *, config: Config, hparams: HParams):
    del key, return_prior_r, hparams
    logits = make_networks(config)["rcsl"].apply(params["rcsl"], _inputs(config, s_b, r_b=r_b))
    loss = rcsl_loss(logits, a_b)
    return loss, {"train/loss": loss, "train/action_loss": loss}


def doc_heads(params, config: Config, s_b, a_b=None, r_b=None) -> dict[str, jax.Array]:
    """Every DoC head at states `s_b` [B] (posterior and energy also need a_b, r_b)."""
    nets, b = make_networks(config), s_b.shape[0]
    k, r, a = config.latents, config.num_returns, config.num_actions
    out = {"value_logits": nets["value"].apply(params["value"], _inputs(config, s_b)).reshape(b, k, r),
           "action_logits": nets["policy"].apply(params["policy"], _inputs(config, s_b)).reshape(b, k, a),
           "prior_logits": nets["prior"].apply(params["prior"], _inputs(config, s_b))}
    if a_b is not None:
        out["z_logits"] = nets["posterior"].apply(params["posterior"], _inputs(config, s_b, a_b, r_b))
        out["energy"] = nets["energy"].apply(params["energy"], _inputs(config, s_b, a_b)).reshape(b, r, k)
    return out


def doc_batch_loss(params, key, s_b, a_b, r_b, return_prior_r, *, config: Config, hparams: HParams):
    heads = doc_heads(params, config, s_b, a_b, r_b)
    z_b = jax.random.categorical(key, jax.lax.stop_gradient(heads["z_logits"]))
    return doc_loss(heads["z_logits"], z_b, heads["value_logits"], heads["action_logits"], heads["energy"],
                    heads["prior_logits"], a_b, r_b, return_prior_r, energy_weight=hparams.energy_weight,
                    prior_weight=hparams.prior_weight, mi_mode=config.mi_mode)


# --------------------------------------------------------------------------------------- evaluation


def rcsl_action_probs(params, targets_g: jax.Array, config: Config, state: int = 0) -> jax.Array:
    """[G, A] pi(. | s, bin(R*)) for each target R*."""
    s_g = jnp.full(targets_g.shape, state, jnp.int32)
    inputs = _inputs(config, s_g, r_b=return_bins(targets_g, config))
    logits = make_networks(config)["rcsl"].apply(params["rcsl"], inputs)
    return jax.nn.softmax(logits)


def doc_select_latents(params, targets_g: jax.Array, config: Config, state: int = 0) -> tuple[jax.Array, jax.Array]:
    """z*(R*) among latents with p(z | s) >= prior_min_prob: the value nearest R*, the largest for
    R* >= max_return. Returns (z* [G] int32, V(z*) [G]), V(z) = E_{p_V}[R | s, z]."""
    heads = doc_heads(params, config, jnp.array([state], jnp.int32))
    values_k = jax.nn.softmax(heads["value_logits"][0]) @ bin_values(config)
    prior_k = jax.nn.softmax(heads["prior_logits"][0])
    supported_k = prior_k >= jnp.minimum(config.prior_min_prob, jnp.max(prior_k))
    distance_gk = jnp.abs(values_k[None, :] - targets_g[:, None])
    distance_gk = jnp.where(targets_g[:, None] >= config.max_return, -values_k[None, :], distance_gk)
    z_g = jnp.argmin(jnp.where(supported_k[None, :], distance_gk, jnp.inf), axis=-1)
    return z_g, values_k[z_g]


def doc_action_probs(params, targets_g: jax.Array, config: Config, state: int = 0) -> jax.Array:
    """[G, A] pi(. | s, z*(R*))."""
    z_g, _ = doc_select_latents(params, targets_g, config, state)
    heads = doc_heads(params, config, jnp.array([state], jnp.int32))
    return jax.nn.softmax(heads["action_logits"][0][z_g])


class Algorithm(NamedTuple):
    init: Callable
    batch_loss: Callable
    action_probs: Callable


ALGORITHMS = {"rcsl": Algorithm(init_rcsl, rcsl_batch_loss, rcsl_action_probs),
              "doc": Algorithm(init_doc, doc_batch_loss, doc_action_probs)}


# ------------------------------------------------------------------------------------------- recipe


@struct.dataclass
class TrainState:
    params: Any
    opt_state: Any


class Recipe(NamedTuple):
    train: Callable  # (key, hparams) -> (TrainState, metrics {name: [num_steps]})
    evaluate: Callable  # (params, targets [G]) -> achieved expected return [G]


def make_train(algorithm: str, config: Config, dataset: stochastic_tasks.ReturnDataset,
               task: stochastic_tasks.BanditParams) -> Recipe:
    """`train(key, hparams)`: `config.num_steps` Adam steps (one optimiser for every head, as the code)
    on minibatches drawn uniformly with replacement, one `lax.scan`; pure, so `jax.vmap(train, (0, None))`
    trains seeds and `jax.vmap(train, (None, 0))` sweeps HParams. `evaluate` is the exact expected return
    of the policy conditioned on each target, at state 0."""
    config.validate()
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)}, got {algorithm!r}.")
    algo = ALGORITHMS[algorithm]
    num_data = dataset.actions.shape[0]

    def train(key: jax.Array, hparams: HParams):
        hparams.validate()
        bins_n = return_bins(dataset.returns, config)
        return_prior_r = jnp.bincount(bins_n, length=config.num_returns) / num_data
        init_key, key = jax.random.split(key)
        params = algo.init(init_key, config)
        opt = adam(hparams.learning_rate)
        loss_fn = jax.grad(lambda p, k, s, a, r: algo.batch_loss(p, k, s, a, r, return_prior_r, config=config,
                                                                hparams=hparams), has_aux=True)

        def one_step(state: TrainState, step_key):
            batch_key, loss_key = jax.random.split(step_key)
            idx = jax.random.randint(batch_key, (config.batch_size,), 0, num_data)
            grads, metrics = loss_fn(state.params, loss_key, dataset.observations[idx], dataset.actions[idx],
                                     bins_n[idx])
            updates, opt_state = opt.update(grads, state.opt_state, state.params)
            return TrainState(optax.apply_updates(state.params, updates), opt_state), metrics

        state = TrainState(params, opt.init(params))
        return jax.lax.scan(one_step, state, jax.random.split(key, config.num_steps))

    def evaluate(params, targets_g: jax.Array) -> jax.Array:
        return stochastic_tasks.expected_return(task, algo.action_probs(params, targets_g, config))

    return Recipe(train, evaluate)
