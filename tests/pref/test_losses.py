"""lfx.pref.losses against NumPy transcriptions of TRL's torch code, identities, and bad input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from lfx.pref import losses

RTOL, ATOL = 1e-5, 1e-6


# ---------------------------------------------------------------------------------------------------------------
# NumPy transcriptions of TRL. torch -> numpy: F.logsigmoid -> logsigmoid, torch.sigmoid -> sigmoid,
# torch.relu -> relu, torch.sort(x, dim=0)[0] -> np.sort(x), x.clamp(min=a) -> np.maximum(x, a).
# ---------------------------------------------------------------------------------------------------------------


def logsigmoid(x):
    return -np.logaddexp(0.0, -x)


def sigmoid(x):
    return np.exp(logsigmoid(x))


def relu(x):
    return np.maximum(x, 0.0)


def softplus(x):
    return np.logaddexp(0.0, x)


def trl_dpo_loss(
    chosen_logps,
    rejected_logps,
    ref_chosen_logps,
    ref_rejected_logps,
    chosen_mask_sum,
    rejected_mask_sum,
    loss_type,
    beta,
    label_smoothing=0.0,
    f_divergence_type="reverse_kl",
    f_alpha_divergence_coef=0.5,
    discopop_tau=0.05,
):
    """TRL 1.10.0.dev0 (commit f2cd57710ae3), trl/trainer/dpo_trainer.py, DPOTrainer._compute_loss, lines 1396-1557:
    from "Get the log ratios" to the per_sequence_loss of each loss type (float32 branch of the alpha clamp).
    `chosen_mask.sum(dim=1)` is passed in as chosen_mask_sum."""
    # Get the log ratios for the chosen and rejected responses
    chosen_logratios = chosen_logps - ref_chosen_logps
    rejected_logratios = rejected_logps - ref_rejected_logps

    if f_divergence_type == "reverse_kl":  # standard DPO
        chosen_scores = chosen_logratios
        rejected_scores = rejected_logratios
    elif f_divergence_type == "forward_kl":
        # f'(t) = 1 - 1/t  -> drop constant -> -exp(-logratio)
        chosen_scores = -np.exp(-chosen_logratios)
        rejected_scores = -np.exp(-rejected_logratios)
    elif f_divergence_type == "js_divergence":
        # f'(t) = log(2t/(t+1)) -> drop log 2
        chosen_scores = logsigmoid(chosen_logratios)
        rejected_scores = logsigmoid(rejected_logratios)
    elif f_divergence_type == "alpha_divergence":
        # alpha-divergence: f'(t) = (t^(α-1) - 1)/(α-1)
        if abs(f_alpha_divergence_coef - 1.0) < 1e-6:  # limit case f'(t) -> log(t), fall back to reverse_kl
            chosen_scores = chosen_logratios
            rejected_scores = rejected_logratios
        else:
            coef = 1.0 / (f_alpha_divergence_coef - 1.0)
            t_chosen = (f_alpha_divergence_coef - 1.0) * chosen_logratios
            t_rejected = (f_alpha_divergence_coef - 1.0) * rejected_logratios
            clamp_max = 80.0  # torch.float32
            t_chosen_float = np.minimum(t_chosen, clamp_max)
            t_rejected_float = np.minimum(t_rejected, clamp_max)
            chosen_scores = np.exp(t_chosen_float) * coef
            rejected_scores = np.exp(t_rejected_float) * coef
    else:
        raise ValueError(f"Unknown f_divergence_type: {f_divergence_type}")

    delta_score = chosen_scores - rejected_scores

    if loss_type == "sigmoid":
        per_sequence_loss = -logsigmoid(beta * delta_score)

    elif loss_type == "hinge":
        per_sequence_loss = relu(1 - beta * delta_score)

    elif loss_type == "ipo":
        chosen_avg_score = chosen_scores / np.maximum(chosen_mask_sum, 1.0)
        rejected_avg_score = rejected_scores / np.maximum(rejected_mask_sum, 1.0)
        ipo_delta = chosen_avg_score - rejected_avg_score
        # (Eq. 17) of the paper where beta is the regularization parameter for the IPO loss, denoted by τ.
        per_sequence_loss = (ipo_delta - 1 / (2 * beta)) ** 2

    elif loss_type == "exo_pair":
        epsilon = label_smoothing
        qw = sigmoid(beta * delta_score)
        log_qw = logsigmoid(beta * delta_score)
        log_pw = np.log1p(-epsilon)
        ql = sigmoid(-beta * delta_score)
        log_ql = logsigmoid(-beta * delta_score)
        log_pl = np.log(epsilon)
        per_sequence_loss = qw * (log_qw - log_pw) + ql * (log_ql - log_pl)

    elif loss_type == "nca_pair":
        chosen_rewards = beta * chosen_scores
        rejected_rewards = beta * rejected_scores
        per_sequence_loss = (
            -logsigmoid(chosen_rewards) - 0.5 * logsigmoid(-chosen_rewards) - 0.5 * logsigmoid(-rejected_rewards)
        )

    elif loss_type == "robust":
        clean_loss_term = -(1 - label_smoothing) * logsigmoid(beta * delta_score)
        flipped_loss_term = -label_smoothing * logsigmoid(-beta * delta_score)
        per_sequence_loss = (clean_loss_term - flipped_loss_term) / (1 - 2 * label_smoothing)

    elif loss_type == "bco_pair":
        chosen_rewards = beta * chosen_scores
        rejected_rewards = beta * rejected_scores
        per_sequence_loss = -logsigmoid(chosen_rewards) - logsigmoid(-rejected_rewards)

    elif loss_type == "sppo_hard":
        winner_margin_error = (chosen_scores - 0.5 / beta) ** 2
        loser_margin_error = (rejected_scores + 0.5 / beta) ** 2
        per_sequence_loss = winner_margin_error + loser_margin_error

    elif loss_type == "aot":
        logratios = chosen_logps - rejected_logps
        ref_logratios = ref_chosen_logps - ref_rejected_logps
        logratios_sorted = np.sort(logratios, axis=0)
        ref_logratios_sorted = np.sort(ref_logratios, axis=0)
        delta = logratios_sorted - ref_logratios_sorted
        per_sequence_loss = (
            -logsigmoid(beta * delta) * (1 - label_smoothing) - logsigmoid(-beta * delta) * label_smoothing
        )

    elif loss_type == "aot_unpaired":
        chosen_logratios_sorted = np.sort(chosen_logratios, axis=0)
        rejected_logratios_sorted = np.sort(rejected_logratios, axis=0)
        delta = chosen_logratios_sorted - rejected_logratios_sorted
        per_sequence_loss = (
            -logsigmoid(beta * delta) * (1 - label_smoothing) - logsigmoid(-beta * delta) * label_smoothing
        )

    elif loss_type == "apo_zero":
        losses_chosen = 1 - sigmoid(beta * chosen_logratios)
        losses_rejected = sigmoid(beta * rejected_logratios)
        per_sequence_loss = losses_chosen + losses_rejected

    elif loss_type == "apo_down":
        losses_chosen = sigmoid(beta * chosen_logratios)
        losses_rejected = 1 - sigmoid(beta * delta_score)
        per_sequence_loss = losses_chosen + losses_rejected

    elif loss_type == "discopop":
        logits = delta_score * beta
        log_ratio_modulation = sigmoid(logits / discopop_tau)
        logistic_component = -logsigmoid(logits)
        exp_component = np.exp(-logits)
        per_sequence_loss = logistic_component * (1 - log_ratio_modulation) + exp_component * log_ratio_modulation

    elif loss_type == "sigmoid_norm":
        chosen_avg_score = chosen_scores / np.maximum(chosen_mask_sum, 1.0)
        rejected_avg_score = rejected_scores / np.maximum(rejected_mask_sum, 1.0)
        delta = chosen_avg_score - rejected_avg_score
        per_sequence_loss = -logsigmoid(beta * delta)

    else:
        raise ValueError(f"Unknown loss type: {loss_type}")
    return per_sequence_loss


def trl_v028_dpo_loss(
    chosen_logps,
    rejected_logps,
    ref_chosen_logps,
    ref_rejected_logps,
    loss_type,
    beta,
    label_smoothing=0.0,
    f_divergence_type="reverse_kl",
    alpha_coef=0.5,
    delta=0.0,
):
    """TRL v0.28.0, trl/trainer/dpo_trainer.py, DPOTrainer.dpo_loss (reference_free=False), the branches
    that differ from current TRL: f-divergence logits, cDPO "sigmoid", "bco_pair" with its running mean `delta`
    (self.running.mean, passed in), "ipo" (on logps that concatenated_forward averaged over tokens)."""
    chosen_logratios = chosen_logps - ref_chosen_logps
    rejected_logratios = rejected_logps - ref_rejected_logps

    if f_divergence_type == "alpha_divergence":
        # cap_exp clamps at log(float32 max) ~ 88.72
        cap = np.log(np.finfo(np.float32).max)
        logits = (
            np.exp(np.minimum(rejected_logratios * -alpha_coef, cap))
            - np.exp(np.minimum(chosen_logratios * -alpha_coef, cap))
        ) / alpha_coef
    else:
        logratios = chosen_logps - rejected_logps
        ref_logratios = ref_chosen_logps - ref_rejected_logps
        logits = logratios - ref_logratios
        if f_divergence_type == "js_divergence":
            logits -= softplus(chosen_logratios) - softplus(rejected_logratios)

    if loss_type == "sigmoid":
        losses = -logsigmoid(beta * logits) * (1 - label_smoothing) - logsigmoid(-beta * logits) * label_smoothing
    elif loss_type == "ipo":
        losses = (logits - 1 / (2 * beta)) ** 2
    elif loss_type == "bco_pair":
        losses = -logsigmoid((beta * chosen_logratios) - delta) - logsigmoid(-(beta * rejected_logratios - delta))
    else:
        raise ValueError(loss_type)
    return losses


def trl_cpo_loss_simpo(policy_chosen_logps, policy_rejected_logps, beta, simpo_gamma, label_smoothing):
    """TRL 1.10.0.dev0, trl/experimental/cpo/cpo_trainer.py, CPOTrainer.cpo_loss, alpha == 0, loss_type "simpo"."""
    logits = policy_chosen_logps - policy_rejected_logps
    gamma_logratios = simpo_gamma / beta
    logits = logits - gamma_logratios
    losses = -logsigmoid(beta * logits) * (1 - label_smoothing) - logsigmoid(-beta * logits) * label_smoothing
    chosen_rewards = beta * policy_chosen_logps
    rejected_rewards = beta * policy_rejected_logps
    return losses, chosen_rewards, rejected_rewards


def log1mexp(x):
    """TRL 1.10.0.dev0, trl/experimental/orpo/orpo_trainer.py, log1mexp."""
    t = -0.6931471805599453
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x < t, np.log1p(-np.exp(x)), np.log(-np.expm1(x)))


def trl_odds_ratio_loss(policy_chosen_logps, policy_rejected_logps, beta):
    """TRL 1.10.0.dev0, trl/experimental/orpo/orpo_trainer.py, ORPOTrainer.odds_ratio_loss."""
    log_odds = (policy_chosen_logps - policy_rejected_logps) - (
        log1mexp(policy_chosen_logps) - log1mexp(policy_rejected_logps)
    )
    ratio = logsigmoid(log_odds)
    losses = beta * ratio
    chosen_rewards = beta * policy_chosen_logps
    rejected_rewards = beta * policy_rejected_logps
    return losses, chosen_rewards, rejected_rewards, np.mean(ratio), np.mean(log_odds)


# ---------------------------------------------------------------------------------------------------------------
# Worked values.
# ---------------------------------------------------------------------------------------------------------------

B = 16


def make_batch(seed, scale=1.0):
    """Sequence logps (float32-representable, so NumPy and JAX see the same inputs) and token counts."""
    rng = np.random.default_rng(seed)
    ref_c = -rng.uniform(5.0, 60.0, B)
    ref_r = -rng.uniform(5.0, 60.0, B)
    pi_c = ref_c + scale * rng.normal(size=B)
    pi_r = ref_r + scale * rng.normal(size=B)
    arrays = [np.asarray(x, np.float32).astype(np.float64) for x in (pi_c, pi_r, ref_c, ref_r)]
    lengths_c = rng.integers(0, 40, B).astype(np.float64)  # a 0 exercises TRL's clamp(min=1)
    lengths_r = rng.integers(1, 40, B).astype(np.float64)
    lengths_c[0] = 0.0
    return arrays, lengths_c, lengths_r


def lfx_loss(arrays, lengths_c, lengths_r, **kwargs):
    return np.asarray(
        losses.preference_loss(
            *(jnp.asarray(a, jnp.float32) for a in arrays),
            chosen_lengths=jnp.asarray(lengths_c),
            rejected_lengths=jnp.asarray(lengths_r),
            **kwargs,
        )
    )


SMOOTHINGS = {"sigmoid": [0.0], "robust": [0.0, 0.2], "exo_pair": [1e-3, 0.2], "aot": [0.0, 0.2]}
SMOOTHINGS["aot_unpaired"] = SMOOTHINGS["aot"]


def trl_cases():
    for loss_type in losses.LOSS_TYPES:
        divergences = ["reverse_kl"] if loss_type in ("aot", "aot_unpaired", "apo_zero") else losses.F_DIVERGENCES
        for f_divergence in divergences:
            for eps in SMOOTHINGS.get(loss_type, [0.0]):
                yield loss_type, f_divergence, eps


@pytest.mark.parametrize("loss_type,f_divergence,label_smoothing", list(trl_cases()))
@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_matches_trl(loss_type, f_divergence, label_smoothing, beta):
    arrays, lengths_c, lengths_r = make_batch(seed=int(beta * 10) + len(loss_type))
    for alpha in [0.3, 0.7] if f_divergence == "alpha_divergence" else [0.5]:
        for tau in [0.05, 0.5] if loss_type == "discopop" else [0.05]:
            want = trl_dpo_loss(
                *arrays,
                lengths_c,
                lengths_r,
                loss_type,
                beta,
                label_smoothing=label_smoothing,
                f_divergence_type=f_divergence,
                f_alpha_divergence_coef=alpha,
                discopop_tau=tau,
            )
            got = lfx_loss(
                arrays,
                lengths_c,
                lengths_r,
                loss_type=loss_type,
                beta=beta,
                label_smoothing=label_smoothing,
                f_divergence=f_divergence,
                alpha=alpha,
                discopop_tau=tau,
            )
            assert got.dtype == np.float32 and got.shape == (B,)
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("label_smoothing", [0.1, 0.3])
@pytest.mark.parametrize("f_divergence", ["reverse_kl", "js_divergence"])
def test_sigmoid_label_smoothing_matches_trl_v028(label_smoothing, f_divergence):
    # cDPO: current TRL's sigmoid ignores label_smoothing; lfx keeps older TRL's cDPO smoothing.
    arrays, lc, lr = make_batch(seed=7)
    want = trl_v028_dpo_loss(*arrays, "sigmoid", 0.3, label_smoothing, f_divergence)
    got = lfx_loss(
        arrays, lc, lr, loss_type="sigmoid", beta=0.3, label_smoothing=label_smoothing, f_divergence=f_divergence
    )
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("alpha", [0.2, 0.5, 0.8])
def test_alpha_divergence_is_trl_v028_with_one_minus_alpha(alpha):
    # Older TRL used the paper's f'(u) = (1 - u^-a')/a'; current TRL's coefficient is a = 1 - a'.
    arrays, lc, lr = make_batch(seed=8)
    want = trl_v028_dpo_loss(*arrays, "sigmoid", 0.2, f_divergence_type="alpha_divergence", alpha_coef=1.0 - alpha)
    got = lfx_loss(arrays, lc, lr, loss_type="sigmoid", beta=0.2, f_divergence="alpha_divergence", alpha=alpha)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("bco_delta", [0.0, 0.37, -1.2])
def test_bco_delta_matches_trl_v028_running_mean(bco_delta):
    arrays, lc, lr = make_batch(seed=9)
    want = trl_v028_dpo_loss(*arrays, "bco_pair", 0.4, delta=bco_delta)
    got = lfx_loss(arrays, lc, lr, loss_type="bco_pair", beta=0.4, bco_delta=bco_delta)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_ipo_equals_trl_v028_on_token_averaged_logps():
    arrays, lc, lr = make_batch(seed=10)
    lc = np.maximum(lc, 1.0)
    pi_c, pi_r, ref_c, ref_r = arrays
    want = trl_v028_dpo_loss(pi_c / lc, pi_r / lr, ref_c / lc, ref_r / lr, "ipo", 0.5)
    got = lfx_loss(arrays, lc, lr, loss_type="ipo", beta=0.5)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("beta,gamma_beta_ratio,label_smoothing", [(2.0, 0.5, 0.0), (2.5, 0.55, 0.1), (10.0, 0.3, 0.0)])
def test_simpo_matches_trl_cpo(beta, gamma_beta_ratio, label_smoothing):
    rng = np.random.default_rng(11)
    avg_c, avg_r = (np.asarray(-rng.uniform(0.1, 3.0, B), np.float32).astype(np.float64) for _ in range(2))
    want, _, _ = trl_cpo_loss_simpo(avg_c, avg_r, beta, beta * gamma_beta_ratio, label_smoothing)
    got = losses.simpo_loss(
        jnp.asarray(avg_c, jnp.float32),
        jnp.asarray(avg_r, jnp.float32),
        beta=beta,
        gamma_beta_ratio=gamma_beta_ratio,
        label_smoothing=label_smoothing,
    )
    np.testing.assert_allclose(np.asarray(got), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("beta", [0.1, 0.25])
def test_orpo_matches_trl(beta):
    rng = np.random.default_rng(12)
    # Average logps on both sides of TRL's log1mexp branch point -log 2.
    avg_c, avg_r = (np.asarray(-rng.uniform(0.01, 3.0, B), np.float32).astype(np.float64) for _ in range(2))
    policy_nll_loss = 1.7
    trl_losses, _, _, log_odds_ratio, log_odds_chosen = trl_odds_ratio_loss(avg_c, avg_r, beta)
    trl_loss = policy_nll_loss - trl_losses.mean()  # "full ORPO loss" in ORPOTrainer.get_batch_loss_metrics
    got, log_odds = losses.orpo_loss(
        jnp.asarray(avg_c, jnp.float32), jnp.asarray(avg_r, jnp.float32), jnp.float32(policy_nll_loss), beta=beta
    )
    assert got.shape == (B,)
    np.testing.assert_allclose(float(jnp.mean(got)), trl_loss, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(np.asarray(got), policy_nll_loss - trl_losses, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(float(jnp.mean(log_odds)), log_odds_chosen, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(float(jnp.mean(jax.nn.log_sigmoid(log_odds))), log_odds_ratio, rtol=RTOL, atol=ATOL)


def test_metrics_match_trl():
    arrays, lc, lr = make_batch(seed=13)
    pi_c, pi_r, ref_c, ref_r = arrays
    beta = 0.3
    loss, metrics = losses.preference_loss_and_metrics(
        *(jnp.asarray(a, jnp.float32) for a in arrays), beta=beta, loss_type="hinge"
    )
    # TRL 1.10.0.dev0 dpo_trainer.py _compute_loss, "Rewards for chosen and rejected completions".
    chosen_rewards = beta * (pi_c - ref_c)
    rejected_rewards = beta * (pi_r - ref_r)
    want = {
        "train/rewards_chosen": chosen_rewards.mean(),
        "train/rewards_rejected": rejected_rewards.mean(),
        "train/rewards_accuracies": (chosen_rewards > rejected_rewards).astype(float).mean(),
        "train/rewards_margins": (chosen_rewards - rejected_rewards).mean(),
        "train/logps_chosen": pi_c.mean(),
        "train/logps_rejected": pi_r.mean(),
        "train/loss": trl_dpo_loss(*arrays, lc, lr, "hinge", beta).mean(),
    }
    assert set(metrics) == set(want)
    assert 0 < want["train/rewards_accuracies"] < 1
    for name, value in want.items():
        np.testing.assert_allclose(float(metrics[name]), value, rtol=RTOL, atol=ATOL, err_msg=name)
    assert float(loss) == pytest.approx(want["train/loss"], rel=RTOL)


def test_accuracy_counts_ties_as_wrong():
    # TRL: reward_accuracies = (chosen_rewards > rejected_rewards).float()
    metrics = losses.preference_metrics(jnp.array([1.0, 0.0, 0.0, -1.0]), jnp.array([0.0, 0.0, 1.0, -1.0]))
    assert float(metrics["train/rewards_accuracies"]) == 0.25
    assert float(metrics["train/rewards_margins"]) == pytest.approx(0.0)


# ---------------------------------------------------------------------------------------------------------------
# Identities.
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
def test_sigmoid_at_reference_is_log2(label_smoothing):
    arrays, _, _ = make_batch(seed=14)
    pi_c, pi_r = arrays[:2]
    got = losses.preference_loss(pi_c, pi_r, pi_c, pi_r, beta=0.7, label_smoothing=label_smoothing)
    np.testing.assert_allclose(np.asarray(got), np.full(B, np.log(2.0)), rtol=1e-6)


@pytest.mark.parametrize("beta", [0.1, 0.5, 3.0])
def test_ipo_minimised_at_margin_one_over_two_beta(beta):
    ones = jnp.ones(1)

    def ipo(h):  # the loss as a function of the margin h, sequence-level (lengths 1)
        return losses.preference_loss(
            h[None],
            jnp.zeros(1),
            jnp.zeros(1),
            jnp.zeros(1),
            loss_type="ipo",
            beta=beta,
            chosen_lengths=ones,
            rejected_lengths=ones,
        )[0]

    h_star = 1.0 / (2.0 * beta)
    grid = jnp.linspace(h_star - 1.0, h_star + 1.0, 2001)
    assert float(grid[jnp.argmin(jax.vmap(ipo)(grid))]) == pytest.approx(h_star, abs=1e-3)
    assert float(ipo(jnp.float32(h_star))) == pytest.approx(0.0, abs=1e-10)
    assert float(jax.grad(ipo)(jnp.float32(h_star))) == pytest.approx(0.0, abs=1e-5)


def test_reverse_kl_is_dpo_and_alpha_divergence_tends_to_its_ends():
    arrays, lc, lr = make_batch(seed=15, scale=0.5)
    pi_c, pi_r, ref_c, ref_r = arrays
    beta = 0.4
    dpo = -logsigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))  # Rafailov et al. 2023, Eq. 7
    np.testing.assert_allclose(lfx_loss(arrays, lc, lr, beta=beta, f_divergence="reverse_kl"), dpo, rtol=RTOL)
    # TRL's a -> 1 is reverse KL, a -> 0 is forward KL.
    near_one = lfx_loss(arrays, lc, lr, beta=beta, f_divergence="alpha_divergence", alpha=1 - 1e-3)
    np.testing.assert_allclose(near_one, dpo, rtol=2e-3)
    near_zero = lfx_loss(arrays, lc, lr, beta=beta, f_divergence="alpha_divergence", alpha=1e-3)
    forward = lfx_loss(arrays, lc, lr, beta=beta, f_divergence="forward_kl")
    np.testing.assert_allclose(near_zero, forward, rtol=5e-3)
    # The paper's JS f'(u) = log(2u / (1 + u)).
    u_c, u_r = np.exp(pi_c - ref_c), np.exp(pi_r - ref_r)
    js = -logsigmoid(beta * (np.log(2 * u_c / (1 + u_c)) - np.log(2 * u_r / (1 + u_r))))
    np.testing.assert_allclose(lfx_loss(arrays, lc, lr, beta=beta, f_divergence="js_divergence"), js, rtol=RTOL)


def test_hinge_is_zero_exactly_when_beta_margin_at_least_one():
    beta = 0.5
    h = jnp.array([2.0, 2.5, 10.0, 1.999, 0.0, -3.0])
    got = losses.preference_loss(h, jnp.zeros(6), jnp.zeros(6), jnp.zeros(6), loss_type="hinge", beta=beta)
    np.testing.assert_array_equal(np.asarray(got[:3]), 0.0)
    assert bool(jnp.all(got[3:] > 0))
    np.testing.assert_allclose(np.asarray(got[3:]), 1 - beta * np.asarray(h[3:]), rtol=1e-5)


def test_simpo_without_margin_is_sigmoid_of_average_logp_difference():
    rng = np.random.default_rng(16)
    avg_c, avg_r = jnp.asarray(-rng.uniform(0.1, 3.0, (2, B)), jnp.float32)
    got = losses.simpo_loss(avg_c, avg_r, beta=2.0, gamma_beta_ratio=0.0)
    np.testing.assert_allclose(np.asarray(got), np.asarray(-jax.nn.log_sigmoid(2.0 * (avg_c - avg_r))), rtol=1e-6)
    shifted = losses.simpo_loss(avg_c, avg_r, beta=2.0, gamma_beta_ratio=0.5)
    assert bool(jnp.all(shifted > got))  # the margin makes every pair harder


def _extreme_batch(sign):
    """Log-ratio margins of +-1e4 (and +-2e4) in float32."""
    ref = jnp.full(4, -20.0)
    pi_c = ref + sign * jnp.array([1e4, -1e4, 1e4, 0.0])
    pi_r = ref - sign * jnp.array([1e4, 1e4, -1e4, 1e4])
    return pi_c, pi_r, ref, ref


@pytest.mark.parametrize("loss_type", losses.LOSS_TYPES)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_gradients_finite_at_extreme_logratios(loss_type, sign):
    kwargs = dict(loss_type=loss_type, beta=0.1, chosen_lengths=jnp.full(4, 7.0), rejected_lengths=jnp.full(4, 3.0))
    if loss_type == "exo_pair":
        kwargs["label_smoothing"] = 1e-3
    grads = jax.grad(lambda *a: jnp.sum(losses.preference_loss(*a, **kwargs)), argnums=(0, 1, 2, 3))(
        *_extreme_batch(sign)
    )
    value = losses.preference_loss(*_extreme_batch(sign), **kwargs)
    assert bool(jnp.all(jnp.isfinite(value)))
    for g in grads:
        assert bool(jnp.all(jnp.isfinite(g))), (loss_type, g)


@pytest.mark.parametrize("f_divergence", ["js_divergence", "alpha_divergence"])
def test_gradients_finite_at_extreme_logratios_for_bounded_divergences(f_divergence):
    for sign in (1.0, -1.0):
        grads = jax.grad(
            lambda *a: jnp.sum(losses.preference_loss(*a, f_divergence=f_divergence)), argnums=(0, 1, 2, 3)
        )(*_extreme_batch(sign))
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)


def test_simpo_orpo_gradients_finite_at_extremes():
    a, b = jnp.array([-1e4, -1e-3, -20.0]), jnp.array([-1e-3, -1e4, -1e4])
    g = jax.grad(lambda x, y: jnp.sum(losses.simpo_loss(x, y, beta=2.0, gamma_beta_ratio=0.5)), argnums=(0, 1))(a, b)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in g)
    # ORPO: average logps far below zero, close to zero (both log1mexp branches), and below float32's exp(x) == 1.
    a, b = jnp.array([-1e4, -1e-6, -0.5, -2.0]), jnp.array([-1e-6, -1e4, -2.0, -1e-8])
    g = jax.grad(lambda x, y: jnp.sum(losses.orpo_loss(x, y, 1.0, beta=0.1)[0]), argnums=(0, 1))(a, b)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in g), g


# ---------------------------------------------------------------------------------------------------------------
# jit / vmap with traced hyper-parameters.
# ---------------------------------------------------------------------------------------------------------------


@struct.dataclass
class Hyper:
    beta: float
    label_smoothing: float
    alpha: float
    discopop_tau: float
    bco_delta: float


VMAP_CASES = [(lt, "reverse_kl") for lt in losses.LOSS_TYPES] + [("sigmoid", "alpha_divergence")]


@pytest.mark.parametrize("loss_type,f_divergence", VMAP_CASES)
def test_vmap_over_hyperparameters_equals_loop(loss_type, f_divergence):
    arrays, lc, lr = make_batch(seed=17)
    data = [jnp.asarray(a, jnp.float32) for a in arrays]
    smoothed = loss_type in ("sigmoid", "robust", "exo_pair", "aot", "aot_unpaired")
    hypers = Hyper(
        beta=jnp.array([0.1, 0.5, 2.0]),
        label_smoothing=jnp.array([0.01, 0.1, 0.3]) if smoothed else jnp.zeros(3),
        alpha=jnp.array([0.2, 0.5, 0.9]),
        discopop_tau=jnp.array([0.05, 0.1, 1.0]),
        bco_delta=jnp.array([0.0, 0.3, -0.2]) if loss_type == "bco_pair" else jnp.zeros(3),
    )

    def loss(h):
        return losses.preference_loss(
            *data,
            loss_type=loss_type,
            f_divergence=f_divergence,
            chosen_lengths=lc,
            rejected_lengths=lr,
            beta=h.beta,
            label_smoothing=h.label_smoothing,
            alpha=h.alpha,
            discopop_tau=h.discopop_tau,
            bco_delta=h.bco_delta,
        )

    batched = jax.jit(jax.vmap(loss))(hypers)
    looped = [loss(jax.tree.map(lambda x, i=i: float(x[i]), hypers)) for i in range(3)]
    assert batched.shape == (3, B)
    np.testing.assert_allclose(np.asarray(batched), np.stack(looped), rtol=1e-6, atol=1e-6)
    assert not np.allclose(looped[0], looped[2])  # the hyper-parameters reach the loss


def test_jit_with_traced_beta_and_metrics():
    arrays, _, _ = make_batch(seed=18)
    data = [jnp.asarray(a, jnp.float32) for a in arrays]
    fn = jax.jit(functools.partial(losses.preference_loss_and_metrics, loss_type="robust"))
    loss, metrics = fn(*data, beta=jnp.float32(0.3), label_smoothing=jnp.float32(0.1))
    want = trl_dpo_loss(*arrays, None, None, "robust", 0.3, label_smoothing=0.1).mean()
    assert float(loss) == pytest.approx(want, rel=RTOL)
    # A traced beta is never range-checked (it may be anything at trace time).
    assert np.isfinite(float(jax.jit(lambda b: losses.preference_loss(*data, beta=b).mean())(jnp.float32(-1.0))))
    g = jax.jit(jax.grad(lambda b: losses.preference_loss(*data, beta=b).mean()))(jnp.float32(0.3))
    assert np.isfinite(float(g))


def test_simpo_orpo_vmap_over_beta():
    rng = np.random.default_rng(19)
    avg_c, avg_r = jnp.asarray(-rng.uniform(0.1, 3.0, (2, B)), jnp.float32)
    betas = jnp.array([0.1, 1.0, 2.5])
    got = jax.jit(jax.vmap(lambda b: losses.simpo_loss(avg_c, avg_r, beta=b, gamma_beta_ratio=0.5)))(betas)
    want = [losses.simpo_loss(avg_c, avg_r, beta=float(b), gamma_beta_ratio=0.5) for b in betas]
    np.testing.assert_allclose(np.asarray(got), np.stack(want), rtol=1e-6)
    got = jax.jit(jax.vmap(lambda b: losses.orpo_loss(avg_c, avg_r, 1.0, beta=b)[0]))(betas)
    want = [losses.orpo_loss(avg_c, avg_r, 1.0, beta=float(b))[0] for b in betas]
    np.testing.assert_allclose(np.asarray(got), np.stack(want), rtol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Bad input: refused with ValueError while tracing, i.e. before anything is compiled.
# ---------------------------------------------------------------------------------------------------------------

Z = jnp.zeros(4)


def raises_before_compile(match, **kwargs):
    """The call raises under jax.jit (at trace time, so nothing compiles) and eagerly."""
    arrays = kwargs.pop("arrays", (Z, Z, Z, Z))
    with pytest.raises(ValueError, match=match):
        jax.jit(lambda *a: losses.preference_loss(*a, **kwargs))(*arrays)
    with pytest.raises(ValueError, match=match):
        losses.preference_loss(*arrays, **kwargs)


def test_unknown_loss_type_lists_known_ones():
    with pytest.raises(ValueError) as info:
        losses.preference_loss(Z, Z, Z, Z, loss_type="dpo")
    assert all(name in str(info.value) for name in losses.LOSS_TYPES)
    raises_before_compile("Unknown loss_type 'dpo'", loss_type="dpo")


def test_unknown_f_divergence_lists_known_ones():
    with pytest.raises(ValueError) as info:
        losses.check_loss_args("sigmoid", 0.1, f_divergence="kl")
    assert all(name in str(info.value) for name in losses.F_DIVERGENCES)
    raises_before_compile("Unknown f_divergence 'kl'", f_divergence="kl")


@pytest.mark.parametrize("beta", [0.0, -0.1, np.float32(0.0), np.array([0.1, -1.0]), float("nan"), jnp.float32(0.0)])
def test_nonpositive_beta_refused(beta):
    raises_before_compile("beta", beta=beta)


def test_mismatched_shapes_refused():
    raises_before_compile(r"policy_rejected_logps \(5,\)", arrays=(Z, jnp.zeros(5), Z, Z))
    raises_before_compile(r"one shape \[B\]", arrays=(Z[None], Z[None], Z[None], Z[None]))
    raises_before_compile("chosen_lengths", loss_type="ipo", chosen_lengths=jnp.ones(3), rejected_lengths=jnp.ones(4))
    with pytest.raises(ValueError, match="policy_rejected_avg_logps"):
        losses.simpo_loss(Z, jnp.zeros(3), beta=1.0, gamma_beta_ratio=0.5)
    with pytest.raises(ValueError, match="chosen_nll"):
        losses.orpo_loss(Z, Z, jnp.zeros(3), beta=0.1)


@pytest.mark.parametrize(
    "match,kwargs",
    [
        ("label_smoothing", dict(loss_type="robust", label_smoothing=0.5)),
        ("label_smoothing", dict(loss_type="sigmoid", label_smoothing=-0.1)),
        ("label_smoothing", dict(loss_type="exo_pair", label_smoothing=0.0)),
        ("does not use label_smoothing", dict(loss_type="hinge", label_smoothing=0.1)),
        ("alpha", dict(f_divergence="alpha_divergence", alpha=1.0)),
        ("alpha", dict(f_divergence="alpha_divergence", alpha=0.0)),
        ("no effect", dict(loss_type="aot", f_divergence="js_divergence")),
        ("no effect", dict(loss_type="apo_zero", f_divergence="forward_kl")),
        ("discopop_tau", dict(loss_type="discopop", discopop_tau=0.0)),
        ("bco_delta", dict(loss_type="sigmoid", bco_delta=0.5)),
        ("chosen_lengths", dict(loss_type="sigmoid_norm")),
        ("chosen_lengths", dict(loss_type="ipo")),
    ],
)
def test_bad_hyperparameters_refused(match, kwargs):
    raises_before_compile(match, **kwargs)


def test_simpo_orpo_refuse_nonpositive_beta():
    with pytest.raises(ValueError, match="beta"):
        losses.simpo_loss(Z, Z, beta=0.0, gamma_beta_ratio=0.5)
    with pytest.raises(ValueError, match="beta"):
        losses.orpo_loss(Z, Z, 1.0, beta=-1.0)
