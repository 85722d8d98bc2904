"""Preference-optimisation losses as pure functions: the DPO family, f-DPO, SimPO, ORPO.

A transcription of TRL (Hugging Face's `trl`, version 1.10.0.dev0, commit f2cd57710ae3 of
2026-07-24): `DPOTrainer._compute_loss` in `trl/trainer/dpo_trainer.py`, `CPOTrainer.cpo_loss` in
`trl/experimental/cpo/cpo_trainer.py` and `ORPOTrainer.odds_ratio_loss` in
`trl/experimental/orpo/orpo_trainer.py`. Where current TRL differs from older TRL, current TRL is
followed and the difference is noted below. All losses are to be MINIMISED and are computed in
float32.

Inputs (shapes `[B]`, one entry per preference pair):
  `policy_chosen_logps`, `policy_rejected_logps`: log pi_theta(y | x) of the chosen / rejected
  response, SUMMED over the response tokens; `ref_chosen_logps`, `ref_rejected_logps`: the same under
  the frozen reference pi_ref. `chosen_lengths`, `rejected_lengths`: the responses' token counts
  (TRL's `completion_mask.sum(1)`, clamped to >= 1), needed by "ipo" and "sigmoid_norm" only.

Notation: rho_c = pi_c - ref_c and rho_r = pi_r - ref_r are the log-ratios; s_c = psi(rho_c) and
s_r = psi(rho_r) are the f-divergence scores (psi below; s = rho for reverse KL); h = s_c - s_r;
eps = `label_smoothing`; L_c, L_r the lengths; sigma the logistic function, log sigma computed by
`jax.nn.log_sigmoid`.

  loss_type      per-example loss                                           paper
  sigmoid        -(1-eps) log sigma(beta h) - eps log sigma(-beta h)        DPO, Rafailov et al. 2023,
                                                                            arXiv:2305.18290; eps > 0
                                                                            is cDPO (Mitchell 2023)
  hinge          max(0, 1 - beta h)                                         SLiC, Zhao et al. 2023,
                                                                            arXiv:2305.10425
  ipo            (s_c/L_c - s_r/L_r - 1/(2 beta))^2                         IPO, Azar et al. 2023,
                                                                            arXiv:2310.12036 (Eq. 17)
  exo_pair       q log(q/(1-eps)) + (1-q) log((1-q)/eps), q = sigma(beta h)  EXO, Ji et al. 2024,
                                                                            arXiv:2402.00856 (Eq. 16)
  nca_pair       -log sigma(beta s_c) - 1/2 log sigma(-beta s_c)            NCA, Chen et al. 2024,
                   - 1/2 log sigma(-beta s_r)                               arXiv:2402.05369
  robust         [-(1-eps) log sigma(beta h) + eps log sigma(-beta h)]      rDPO, Chowdhury et al.
                   / (1 - 2 eps)                                            2024, arXiv:2403.00409
  bco_pair       -log sigma(beta s_c - delta) - log sigma(-(beta s_r - delta))  BCO, Jung et al. 2024,
                                                                            arXiv:2404.04656
  sppo_hard      (s_c - 1/(2 beta))^2 + (s_r + 1/(2 beta))^2                SPPO, Wu et al. 2024,
                                                                            arXiv:2405.00675
  aot            d = sort_B(pi_c - pi_r) - sort_B(ref_c - ref_r);           AOT, Melnyk et al. 2024,
                   -(1-eps) log sigma(beta d) - eps log sigma(-beta d)      arXiv:2406.05882
  aot_unpaired   as aot with d = sort_B(rho_c) - sort_B(rho_r)              (same)
  apo_zero       1 - sigma(beta rho_c) + sigma(beta rho_r)                  APO, D'Oosterlinck et al.
                                                                            2024, arXiv:2408.06266
  apo_down       sigma(beta rho_c) + 1 - sigma(beta h)                      (same, Eq. 8)
  discopop       x = beta h, m = sigma(x/tau):                              DiscoPOP, Lu et al. 2024,
                   (1 - m)(-log sigma(x)) + m exp(-x)                       arXiv:2406.08414 (Eq. 5)
  sigmoid_norm   -log sigma(beta (s_c/L_c - s_r/L_r))                       length-normalised DPO
                                                                            (TRL PR #5406, after SimPO)

`sort_B` sorts over the batch, so "aot" and "aot_unpaired" couple the examples of a batch (the other
losses are per-example). TRL's "sft" loss type (the chosen NLL, needing logits) is not a function of
the four log-probabilities and is left to the caller, as are TRL's multi-loss weighting (MPO), WPO
weighting (`use_weighting`) and LD-DPO (`ld_alpha`, which changes how the logps are summed).

f-DPO (Wang et al. 2023, "Beyond Reverse KL: Generalizing DPO with Diverse Divergence Constraints",
arXiv:2309.16240): the paper replaces rho by f'(u), u = pi/pi_ref, for the divergence's generator f.
Following current TRL, constants of f' (which cancel in h) are dropped, and psi is applied to every
loss type that uses s_c, s_r or h:

  f_divergence      psi(rho)                         f'(u) (paper, Table 1)
  reverse_kl        rho                              log u + 1
  forward_kl        -exp(-rho)                       -1/u
  js_divergence     log sigma(rho)                   log(2u / (1 + u))
  alpha_divergence  exp(min((a-1) rho, 80)) / (a-1)  paper: (1 - u^(-a')) / a'

The alpha-divergence follows TRL's convention f'(u) = (u^(a-1) - 1)/(a-1), a = `alpha` in (0, 1),
which is the paper's with a' = 1 - a (so a -> 1 tends to reverse KL, a -> 0 to forward KL; the
default a = 0.5 is the same in both). The clamp at 80 is TRL's (exp stays finite in float32);
forward_kl has no clamp in TRL and overflows for rho < -88 in float32, here too.
"aot", "aot_unpaired" and "apo_zero" never use psi (TRL silently ignores `f_divergence_type` for
them; here a non-reverse-KL divergence with them is refused); "apo_down" uses psi in its second term
only, as TRL does.

Differences from older TRL (<= 0.28, the `dpo_loss` method; current TRL's loss code dates from the
DPO refactor, PR #3906, v0.29.0):
  * sigmoid: older TRL applied label smoothing (cDPO); current TRL's sigmoid ignores
    `label_smoothing`. Here eps enters as in older TRL; at eps = 0 (the only value current TRL's
    sigmoid has) the two agree.
  * ipo: TRL <= 0.7.10 used the unnormalised sequence logps (the paper's Eq. 17; pass lengths of
    ones for it); 0.7.11 - 0.28 averaged the policy and reference logps over the response tokens in
    `concatenated_forward` before the loss; current TRL divides the scores s by the lengths inside the
    loss. The last two agree for reverse KL, not for the other f-divergences.
  * bco_pair: older TRL subtracted delta, the running mean (over all batches so far, the current one
    included, no gradient) of the batch-mean reward mean(beta rho_c, beta rho_r); current TRL has no
    delta. `bco_delta` = 0 (default) is current TRL; pass the running mean to get older TRL.
  * f-divergences: older TRL applied psi only to h of sigmoid / hinge / ipo / exo_pair / robust (not
    to discopop or apo_down) and knew no forward_kl; its alpha-divergence used the paper's a'
    directly. nca_pair, bco_pair and sppo_hard now use the scores s.
  * exo_pair: older TRL silently replaced eps = 0 by 1e-3; current TRL (and this module) refuse it.
  * robust: unchanged since it was added (PR #1653).
  * discopop: the same formula; m exp(-x) is evaluated as exp(-x + log sigma(x/tau)), which equals
    TRL's wherever TRL is finite and stays finite where TRL's exp(-x) overflows (x < -88.7 in
    float32) and its m * exp(-x) is NaN (m = 0) or inf.

SimPO (Meng, Xia, Chen 2024, arXiv:2405.14734) and ORPO (Hong, Lee, Thorne 2024, arXiv:2403.07691)
take the policy's AVERAGE per-token log-probabilities and no reference; see `simpo_loss`, `orpo_loss`.

Metrics (`preference_metrics`, TRL's logged names in brackets), batch means:
  "train/rewards_chosen" (rewards/chosen), "train/rewards_rejected" (rewards/rejected),
  "train/rewards_accuracies" (rewards/accuracies, fraction with chosen reward > rejected reward),
  "train/rewards_margins" (rewards/margins); `preference_loss_and_metrics` adds "train/loss",
  "train/logps_chosen" (logps/chosen) and "train/logps_rejected" (logps/rejected). The DPO-family
  rewards are beta rho (TRL uses the log-ratios, not the f-scores); SimPO's and ORPO's (TRL's
  CPOTrainer, ORPOTrainer) are beta times the average logps.

Hyper-parameters `beta`, `label_smoothing`, `alpha`, `discopop_tau`, `bco_delta` may be traced
(`jax.jit`, `jax.vmap` over a sweep); `loss_type` and `f_divergence` are static strings.
`check_loss_args` validates the concrete ones and is called before any tracing work.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

LOSS_TYPES = (
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sigmoid_norm",
)
F_DIVERGENCES = ("reverse_kl", "forward_kl", "js_divergence", "alpha_divergence")

# Loss types that read `label_smoothing`, that ignore the f-divergence scores, that need lengths.
_SMOOTHED = ("sigmoid", "exo_pair", "robust", "aot", "aot_unpaired")
_RAW_LOGRATIOS = ("aot", "aot_unpaired", "apo_zero")
_LENGTH_NORMALISED = ("ipo", "sigmoid_norm")

# TRL clamps the alpha-divergence exponent so that exp() stays finite in float32.
_ALPHA_EXP_CLAMP = 80.0

Float = float | jax.Array


def _concrete(value) -> np.ndarray | None:
    """The value as a float64 array, or None for a tracer (a traced value is not checked)."""
    if isinstance(value, jax.core.Tracer):
        return None
    return np.asarray(value, np.float64)


def _require(name: str, value, ok, text: str) -> None:
    x = _concrete(value)
    if x is not None and not bool(np.all(ok(x) & np.isfinite(x))):
        raise ValueError(f"{name}={value} must be finite and {text}.")


def check_loss_args(
    loss_type: str,
    beta: Float,
    *,
    label_smoothing: Float = 0.0,
    f_divergence: str = "reverse_kl",
    alpha: Float = 0.5,
    discopop_tau: Float = 0.05,
    bco_delta: Float = 0.0,
) -> None:
    """Raises ValueError for an unknown `loss_type` or `f_divergence` (listing the known ones), a
    combination that would silently do nothing, or a concrete hyper-parameter out of range:
    beta > 0, label_smoothing in [0, 0.5) (in (0, 0.5) for "exo_pair", whose loss has log eps),
    alpha in (0, 1) for "alpha_divergence", discopop_tau > 0. Traced values are not checked.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"Unknown loss_type {loss_type!r}; known loss types: {', '.join(LOSS_TYPES)}.")
    if f_divergence not in F_DIVERGENCES:
        raise ValueError(f"Unknown f_divergence {f_divergence!r}; known f-divergences: {', '.join(F_DIVERGENCES)}.")
    if f_divergence != "reverse_kl" and loss_type in _RAW_LOGRATIOS:
        raise ValueError(
            f"loss_type {loss_type!r} uses the raw log-ratios, so f_divergence={f_divergence!r} would have no "
            f"effect; use f_divergence='reverse_kl' with {', '.join(_RAW_LOGRATIOS)}."
        )
    _require("beta", beta, lambda v: v > 0, "> 0")
    if loss_type == "exo_pair":
        _require("label_smoothing", label_smoothing, lambda v: (v > 0) & (v < 0.5), "in (0, 0.5) for 'exo_pair'")
    else:
        _require("label_smoothing", label_smoothing, lambda v: (v >= 0) & (v < 0.5), "in [0, 0.5)")
        ls = _concrete(label_smoothing)
        if loss_type not in _SMOOTHED and ls is not None and bool(np.any(ls != 0)):
            raise ValueError(
                f"loss_type {loss_type!r} does not use label_smoothing (got {label_smoothing}); it is used by "
                f"{', '.join(_SMOOTHED)}."
            )
    if f_divergence == "alpha_divergence":
        _require("alpha", alpha, lambda v: (v > 0) & (v < 1), "in (0, 1) for 'alpha_divergence'")
    if loss_type == "discopop":
        _require("discopop_tau", discopop_tau, lambda v: v > 0, "> 0")
    delta = _concrete(bco_delta)
    if loss_type != "bco_pair" and delta is not None and bool(np.any(delta != 0)):
        raise ValueError(f"bco_delta={bco_delta} is used by loss_type 'bco_pair' only (got {loss_type!r}).")


def _check_shapes(**arrays) -> None:
    """All arrays must share one 1-D shape [B]."""
    shapes = {name: tuple(jnp.shape(a)) for name, a in arrays.items()}
    first = next(iter(shapes.values()))
    if len(first) != 1 or any(s != first for s in shapes.values()):
        listed = ", ".join(f"{name} {s}" for name, s in shapes.items())
        raise ValueError(f"Expected inputs of one shape [B]; got {listed}.")


def f_divergence_scores(logratios: jax.Array, f_divergence: str, alpha: Float = 0.5) -> jax.Array:
    """psi(rho) of the module docstring: f'(pi/pi_ref) of the f-DPO divergence, up to a constant."""
    if f_divergence == "reverse_kl":
        return logratios
    if f_divergence == "forward_kl":
        return -jnp.exp(-logratios)
    if f_divergence == "js_divergence":
        return jax.nn.log_sigmoid(logratios)
    if f_divergence == "alpha_divergence":
        return jnp.exp(jnp.minimum((alpha - 1.0) * logratios, _ALPHA_EXP_CLAMP)) / (alpha - 1.0)
    raise ValueError(f"Unknown f_divergence {f_divergence!r}; known f-divergences: {', '.join(F_DIVERGENCES)}.")


def _smoothed_sigmoid(x: jax.Array, label_smoothing: Float) -> jax.Array:
    """-(1 - eps) log sigma(x) - eps log sigma(-x): the logistic loss on labels flipped with prob eps."""
    return -(1.0 - label_smoothing) * jax.nn.log_sigmoid(x) - label_smoothing * jax.nn.log_sigmoid(-x)


def preference_loss(
    policy_chosen_logps: jax.Array,
    policy_rejected_logps: jax.Array,
    ref_chosen_logps: jax.Array,
    ref_rejected_logps: jax.Array,
    *,
    loss_type: str = "sigmoid",
    beta: Float = 0.1,
    label_smoothing: Float = 0.0,
    f_divergence: str = "reverse_kl",
    alpha: Float = 0.5,
    discopop_tau: Float = 0.05,
    bco_delta: Float = 0.0,
    chosen_lengths: jax.Array | None = None,
    rejected_lengths: jax.Array | None = None,
) -> jax.Array:
    """The per-example loss [B] (float32) of TRL's DPOTrainer for `loss_type` (module docstring).

    Args:
      policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps: [B] sequence
        log-probabilities (summed over response tokens) of the policy and the reference.
      loss_type: one of `LOSS_TYPES` (static).
      beta: the inverse temperature (IPO's tau, TRL's `beta`).
      label_smoothing: eps, used by sigmoid (cDPO), robust (flip probability), exo_pair, aot, aot_unpaired.
      f_divergence: one of `F_DIVERGENCES` (static), TRL's `f_divergence_type`.
      alpha: TRL's `f_alpha_divergence_coef`, for "alpha_divergence".
      discopop_tau: DiscoPOP's temperature tau (TRL's `discopop_tau`).
      bco_delta: the reward shift delta of "bco_pair" (0 in current TRL; older TRL's running mean);
        no gradient flows into it.
      chosen_lengths, rejected_lengths: [B] response token counts, required by "ipo" and
        "sigmoid_norm" (clamped to >= 1 as in TRL), ignored otherwise.
    """
    check_loss_args(
        loss_type,
        beta,
        label_smoothing=label_smoothing,
        f_divergence=f_divergence,
        alpha=alpha,
        discopop_tau=discopop_tau,
        bco_delta=bco_delta,
    )
    _check_shapes(
        policy_chosen_logps=policy_chosen_logps,
        policy_rejected_logps=policy_rejected_logps,
        ref_chosen_logps=ref_chosen_logps,
        ref_rejected_logps=ref_rejected_logps,
    )
    if loss_type in _LENGTH_NORMALISED:
        if chosen_lengths is None or rejected_lengths is None:
            raise ValueError(
                f"loss_type {loss_type!r} divides by the response lengths: pass chosen_lengths and rejected_lengths "
                "(token counts; arrays of ones for the unnormalised sequence-level form)."
            )
        _check_shapes(
            policy_chosen_logps=policy_chosen_logps, chosen_lengths=chosen_lengths, rejected_lengths=rejected_lengths
        )
    pi_c, pi_r, ref_c, ref_r = (
        jnp.asarray(x, jnp.float32)
        for x in (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    )
    chosen_logratios = pi_c - ref_c
    rejected_logratios = pi_r - ref_r
    chosen_scores = f_divergence_scores(chosen_logratios, f_divergence, alpha)
    rejected_scores = f_divergence_scores(rejected_logratios, f_divergence, alpha)
    delta_score = chosen_scores - rejected_scores
    eps = label_smoothing

    if loss_type == "sigmoid":
        return _smoothed_sigmoid(beta * delta_score, eps)
    if loss_type == "hinge":
        return jax.nn.relu(1.0 - beta * delta_score)
    if loss_type in _LENGTH_NORMALISED:
        chosen_len = jnp.maximum(jnp.asarray(chosen_lengths, jnp.float32), 1.0)
        rejected_len = jnp.maximum(jnp.asarray(rejected_lengths, jnp.float32), 1.0)
        avg_delta = chosen_scores / chosen_len - rejected_scores / rejected_len
        if loss_type == "ipo":
            return (avg_delta - 1.0 / (2.0 * beta)) ** 2
        return -jax.nn.log_sigmoid(beta * avg_delta)
    if loss_type == "exo_pair":
        x = beta * delta_score
        return jax.nn.sigmoid(x) * (jax.nn.log_sigmoid(x) - jnp.log1p(-eps)) + jax.nn.sigmoid(-x) * (
            jax.nn.log_sigmoid(-x) - jnp.log(eps)
        )
    if loss_type == "nca_pair":
        chosen_rewards = beta * chosen_scores
        rejected_rewards = beta * rejected_scores
        return (
            -jax.nn.log_sigmoid(chosen_rewards)
            - 0.5 * jax.nn.log_sigmoid(-chosen_rewards)
            - 0.5 * jax.nn.log_sigmoid(-rejected_rewards)
        )
    if loss_type == "robust":
        x = beta * delta_score
        return (-(1.0 - eps) * jax.nn.log_sigmoid(x) + eps * jax.nn.log_sigmoid(-x)) / (1.0 - 2.0 * eps)
    if loss_type == "bco_pair":
        delta = jax.lax.stop_gradient(bco_delta)
        return -jax.nn.log_sigmoid(beta * chosen_scores - delta) - jax.nn.log_sigmoid(-(beta * rejected_scores - delta))
    if loss_type == "sppo_hard":
        return (chosen_scores - 0.5 / beta) ** 2 + (rejected_scores + 0.5 / beta) ** 2
    if loss_type == "aot":
        delta = jnp.sort(pi_c - pi_r) - jnp.sort(ref_c - ref_r)
        return _smoothed_sigmoid(beta * delta, eps)
    if loss_type == "aot_unpaired":
        delta = jnp.sort(chosen_logratios) - jnp.sort(rejected_logratios)
        return _smoothed_sigmoid(beta * delta, eps)
    if loss_type == "apo_zero":
        return 1.0 - jax.nn.sigmoid(beta * chosen_logratios) + jax.nn.sigmoid(beta * rejected_logratios)
    if loss_type == "apo_down":
        return jax.nn.sigmoid(beta * chosen_logratios) + 1.0 - jax.nn.sigmoid(beta * delta_score)
    # discopop (check_loss_args has refused anything else)
    x = beta * delta_score
    modulation = jax.nn.sigmoid(x / discopop_tau)
    return -jax.nn.log_sigmoid(x) * (1.0 - modulation) + jnp.exp(jax.nn.log_sigmoid(x / discopop_tau) - x)


def preference_metrics(chosen_rewards: jax.Array, rejected_rewards: jax.Array) -> dict[str, jax.Array]:
    """TRL's reward metrics (batch means) from the per-example implicit rewards [B] (no gradient):
    "train/rewards_chosen", "train/rewards_rejected", "train/rewards_accuracies" (chosen > rejected),
    "train/rewards_margins" (chosen - rejected).
    """
    chosen = jax.lax.stop_gradient(jnp.asarray(chosen_rewards, jnp.float32))
    rejected = jax.lax.stop_gradient(jnp.asarray(rejected_rewards, jnp.float32))
    return {
        "train/rewards_chosen": jnp.mean(chosen),
        "train/rewards_rejected": jnp.mean(rejected),
        "train/rewards_accuracies": jnp.mean((chosen > rejected).astype(jnp.float32)),
        "train/rewards_margins": jnp.mean(chosen - rejected),
    }


def preference_loss_and_metrics(
    policy_chosen_logps: jax.Array,
    policy_rejected_logps: jax.Array,
    ref_chosen_logps: jax.Array,
    ref_rejected_logps: jax.Array,
    *,
    beta: Float = 0.1,
    **loss_kwargs,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(mean of `preference_loss`, metrics): the rewards are beta (pi - ref), as TRL logs them, plus
    "train/loss", "train/logps_chosen", "train/logps_rejected". `loss_kwargs` go to `preference_loss`.
    """
    losses = preference_loss(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta=beta, **loss_kwargs
    )
    loss = jnp.mean(losses)
    pi_c = jnp.asarray(policy_chosen_logps, jnp.float32)
    pi_r = jnp.asarray(policy_rejected_logps, jnp.float32)
    ref_c = jnp.asarray(ref_chosen_logps, jnp.float32)
    ref_r = jnp.asarray(ref_rejected_logps, jnp.float32)
    metrics = preference_metrics(beta * (pi_c - ref_c), beta * (pi_r - ref_r))
    metrics["train/loss"] = jax.lax.stop_gradient(loss)
    metrics["train/logps_chosen"] = jax.lax.stop_gradient(jnp.mean(pi_c))
    metrics["train/logps_rejected"] = jax.lax.stop_gradient(jnp.mean(pi_r))
    return loss, metrics


def simpo_loss(
    policy_chosen_avg_logps: jax.Array,
    policy_rejected_avg_logps: jax.Array,
    *,
    beta: Float,
    gamma_beta_ratio: Float,
    label_smoothing: Float = 0.0,
) -> jax.Array:
    """SimPO's per-example loss [B] (Meng et al. 2024, arXiv:2405.14734, Eq. 6, with cDPO smoothing):

        z = beta (avg_c - avg_r - gamma_beta_ratio),   loss = -(1-eps) log sigma(z) - eps log sigma(-z),

    with avg_c, avg_r the policy's AVERAGE per-token log-probabilities (no reference model). This is
    TRL's `CPOTrainer.cpo_loss` with loss_type="simpo" and `alpha` = 0 (AlphaPO's reward transform is
    not included); TRL's `simpo_gamma` is beta * gamma_beta_ratio (the SimPO code's
    `gamma_beta_ratio`). TRL's CPOTrainer adds `cpo_alpha` times the chosen NLL (default 1.0; SimPO
    proper uses 0): that term is the caller's. TRL logs the rewards beta * avg (`preference_metrics`).
    """
    _check_shapes(policy_chosen_avg_logps=policy_chosen_avg_logps, policy_rejected_avg_logps=policy_rejected_avg_logps)
    _require("beta", beta, lambda v: v > 0, "> 0")
    _require("label_smoothing", label_smoothing, lambda v: (v >= 0) & (v < 0.5), "in [0, 0.5)")
    logits = (
        jnp.asarray(policy_chosen_avg_logps, jnp.float32)
        - jnp.asarray(policy_rejected_avg_logps, jnp.float32)
        - gamma_beta_ratio
    )
    return _smoothed_sigmoid(beta * logits, label_smoothing)


def _log1mexp(x: jax.Array) -> jax.Array:
    """log(1 - exp(x)) for x < 0, TRL's branch at -log 2. The log1p branch sees only x < -log 2: for x
    near 0 it is -inf, and even unselected by `where` it would put a NaN into the gradient."""
    t = -0.6931471805599453
    return jnp.where(x < t, jnp.log1p(-jnp.exp(jnp.minimum(x, t))), jnp.log(-jnp.expm1(x)))


def orpo_loss(
    policy_chosen_avg_logps: jax.Array,
    policy_rejected_avg_logps: jax.Array,
    chosen_nll: jax.Array,
    *,
    beta: Float,
) -> tuple[jax.Array, jax.Array]:
    """ORPO's per-example loss [B] and log-odds ratio [B] (Hong et al. 2024, arXiv:2403.07691, Eqs. 4-7):

        log_odds = (avg_c - avg_r) - (log(1 - exp(avg_c)) - log(1 - exp(avg_r))),
        loss = chosen_nll - beta log sigma(log_odds),

    with avg_c, avg_r < 0 the policy's AVERAGE per-token log-probabilities. TRL's
    `ORPOTrainer.odds_ratio_loss` returns beta log sigma(log_odds) and its loss is
    `policy_nll_loss - mean(that)`, where `policy_nll_loss` is the token-averaged cross-entropy of the
    chosen responses over the whole batch: pass that scalar as `chosen_nll` to reproduce TRL's mean
    loss exactly, or a per-example [B] NLL. TRL logs mean(log sigma(log_odds)) as "log_odds_ratio"
    and mean(log_odds) as "log_odds_chosen", and the rewards beta * avg (`preference_metrics`).
    """
    _check_shapes(policy_chosen_avg_logps=policy_chosen_avg_logps, policy_rejected_avg_logps=policy_rejected_avg_logps)
    _require("beta", beta, lambda v: v > 0, "> 0")
    if jnp.shape(chosen_nll) not in ((), jnp.shape(policy_chosen_avg_logps)):
        raise ValueError(
            f"chosen_nll must be a scalar or of shape {jnp.shape(policy_chosen_avg_logps)}; "
            f"got {jnp.shape(chosen_nll)}."
        )
    avg_c = jnp.asarray(policy_chosen_avg_logps, jnp.float32)
    avg_r = jnp.asarray(policy_rejected_avg_logps, jnp.float32)
    log_odds = (avg_c - avg_r) - (_log1mexp(avg_c) - _log1mexp(avg_r))
    loss = jnp.asarray(chosen_nll, jnp.float32) - beta * jax.nn.log_sigmoid(log_odds)
    return loss, log_odds
