"""SparsePO: preference optimisation with learned sparse token masks on a token-level DPO objective.

Christopoulou, Cardenas, Lampouras, Bou-Ammar & Wang 2024, "SparsePO: Controlling Preference
Alignment of LLMs via Sparse Token Masks", arXiv:2410.05102; transcribed from the authors' code
(github.com/huawei-noah/HEBO, SparsePO/src/trainers/sparse_trainer.py `get_batch_loss_metrics`,
SparsePO/src/masks/mask_models.py `SimpleMaskLayer` / `SimpleMaskAllLayers`).

For a pair (y_w chosen, y_l rejected), response tokens t (m_t = 1), log-ratio
lr_t = log pi(y_t | x, y_<t) - log pi_ref(y_t | x, y_<t) and the per-position KL of TDPO
KL_t = KL(pi_ref(. | x, y_<t) || pi(. | x, y_<t)) (a sum over the whole vocabulary),

    U(y)  = sum_t m_t mu_t lr_t                                   (masked sequence log-ratio)
    D(y)  = sum_t m_t md_t KL_t                                   (masked sequence KL)
    loss  = -log sigma(beta [(U(y_w) - U(y_l)) - (D(y_l) - D(y_w))])
            + l1_u (|mu(y_w)|_1 + |mu(y_l)|_1) + l1_d (|md(y_w)|_1 + |md(y_l)|_1)

The authors write d = sum md (-KL)_w - sum md (-KL)_l (their `chosen_token_kl` is
sum_v p_ref (log p - log p_ref) = -KL_t) and the loss -logsigmoid(beta (u - d)): the same thing.

* masks fixed to 1: TDPO1 (Zeng et al. 2024, arXiv:2404.11999; `tdpo_loss(if_tdpo2=False)`);
* mu = 1, md = 0: DPO's sigmoid loss on the summed log-ratios;
* mu = md = 0: log 2 (no signal; with l1 > 0 the L1 terms vanish too).

Masks (`mask_apply`): mu_t, md_t = ReLU(w . LayerNorm(h_t) + b) of the FROZEN reference's hidden
state h_t at the position predicting y_t (so a mask sees the context x, y_<t, never y_t itself).
ReLU gives exact zeros: the sparsity. This is the authors' `simple_all` mask model (the default in
all their experiments: LayerNorm -> Linear(D, 1) -> ReLU per layer, a bias-free Linear(L, 1) mixer,
ReLU) restricted to the one layer `PairBatch` carries (the final hidden states, before the final
RMSNorm), with the one-weight mixer folded into (w, b) (ReLU(c ReLU(z)) = c ReLU(z) for c > 0; a
c <= 0 would only kill the mask). Dropout is left out (TRL's `disable_dropout=True`, the authors'
default, zeroes it in the wrapped model, masks included); the authors' separate weight decay of the
mask parameters (`mask_weight_decay`) is not reproduced (the recipe has one Adam for all).

Variants (the authors' `rw_kl_independent`): "common" (False, their default) uses one mask for both
terms, mu = md; "independent" (True) learns two mask networks. For the common mask the authors halve
l1_u and l1_d ("make up for double adding"); so does `objective(independent=False)`.

Shapes: B pairs, K response columns, D model width, V vocabulary.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lfx.pref import losses
from lfx.pref.objectives import Objective

LN_EPS = 1e-5  # torch.nn.LayerNorm's default (the authors pass the backbone's layer_norm_eps)
VARIANTS = ("common", "independent")


# ------------------------------------------------------------------ the mask network
def mask_init(key: jax.Array, dim: int) -> dict:
    """One mask network's params, as torch initialises them: LayerNorm scale 1 / bias 0, Linear(D, 1)
    weight and bias ~ U(-1/sqrt(D), 1/sqrt(D))."""
    kw, kb = jax.random.split(key)
    bound = 1.0 / jnp.sqrt(jnp.float32(dim))
    return {"ln_scale": jnp.ones((dim,), jnp.float32), "ln_bias": jnp.zeros((dim,), jnp.float32),
            "w": jax.random.uniform(kw, (dim,), jnp.float32, -bound, bound),
            "b": jax.random.uniform(kb, (), jnp.float32, -bound, bound)}


def mask_apply(params: dict, hidden: jax.Array) -> jax.Array:
    """Mask values ReLU(w . LayerNorm(h) + b): hidden [..., D] -> float32 [...] (>= 0, exact zeros)."""
    h = hidden.astype(jnp.float32)
    mu = h.mean(-1, keepdims=True)
    var = jnp.mean(jnp.square(h - mu), -1, keepdims=True)
    x = (h - mu) * jax.lax.rsqrt(var + LN_EPS) * params["ln_scale"] + params["ln_bias"]
    return jax.nn.relu(x @ params["w"] + params["b"])


# ------------------------------------------------------------------ the loss
def sparsepo_loss(policy_chosen_token, policy_rejected_token, ref_chosen_token, ref_rejected_token,
                  chosen_kl, rejected_kl, chosen_mask, rejected_mask, u_chosen, u_rejected,
                  d_chosen, d_rejected, *, beta, l1_u=0.0, l1_d=0.0) -> tuple[jax.Array, dict]:
    """SparsePO's per-pair loss [B] and its parts (see the module doc for the formula).

    Args:
      policy_*_token, ref_*_token: [B, K] per-token log-probs of the responses (0 off the response).
      chosen_kl, rejected_kl: [B, K] KL(pi_ref || pi) at each response position (`sequence.token_kl`).
      chosen_mask, rejected_mask: [B, K] 1 on response tokens.
      u_*: [B, K] the reward-term masks mu; d_*: [B, K] the KL-term masks md (the same arrays for the
        common variant).
      beta, l1_u, l1_d: floats (traceable).
    Returns:
      (loss [B], {"U_chosen", "U_rejected", "D_chosen", "D_rejected", "logits"} each [B]) where
      logits = U_w - U_l - (D_l - D_w) is the argument of beta in the sigmoid.
    """
    f = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    mc, mr = f(chosen_mask), f(rejected_mask)
    U_c = jnp.sum(f(u_chosen) * (f(policy_chosen_token) - f(ref_chosen_token)) * mc, -1)
    U_r = jnp.sum(f(u_rejected) * (f(policy_rejected_token) - f(ref_rejected_token)) * mr, -1)
    D_c = jnp.sum(f(d_chosen) * f(chosen_kl) * mc, -1)
    D_r = jnp.sum(f(d_rejected) * f(rejected_kl) * mr, -1)
    logits = (U_c - U_r) - (D_r - D_c)
    loss = -jax.nn.log_sigmoid(beta * logits)
    l1 = lambda m, msk: jnp.sum(jnp.abs(f(m)) * msk, -1)  # noqa: E731
    loss = loss + l1_u * (l1(u_chosen, mc) + l1(u_rejected, mr))
    loss = loss + l1_d * (l1(d_chosen, mc) + l1(d_rejected, mr))
    return loss, {"U_chosen": U_c, "U_rejected": U_r, "D_chosen": D_c, "D_rejected": D_r,
                  "logits": logits}


def mask_stats(values: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean mask value, fraction of exact zeros) over the response tokens: [B, K] -> [], []."""
    m = jnp.asarray(mask, jnp.float32)
    n = jnp.maximum(m.sum(), 1.0)
    return jnp.sum(values * m) / n, jnp.sum((values == 0) * m) / n


# ------------------------------------------------------------------ the recipe's Objective
def masks_of(params: dict, hidden: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mu, md) [B, K] of the reference hidden states [B, K, D] (one network or two)."""
    if "common" in params:
        m = mask_apply(params["common"], hidden)
        return m, m
    return mask_apply(params["reward"], hidden), mask_apply(params["kl"], hidden)


def objective(independent: bool) -> Objective:
    """The recipe's `Objective` for one variant (common: one mask; independent: two)."""

    def init(key, config, reference) -> dict:
        del reference
        dim = config.model.dim
        if independent:
            ku, kd = jax.random.split(key)
            return {"reward": mask_init(ku, dim), "kl": mask_init(kd, dim)}
        return {"common": mask_init(key, dim)}

    def loss(params, batch, hparams, config) -> tuple[jax.Array, dict]:
        del config
        kl_c, kl_r = batch.chosen_token_kl, batch.rejected_token_kl
        if kl_c is None or kl_r is None or batch.ref_chosen_hidden is None:
            raise ValueError(
                "SparsePO needs the reference's hidden states and TDPO's per-position "
                "KL(pi_ref || pi) of both responses (PairBatch.chosen_token_kl / "
                "rejected_token_kl, `sequence.token_kl`); the recipe provides them for "
                "objectives with needs_reference_hidden.")
        mu_c, md_c = masks_of(params, batch.ref_chosen_hidden)
        mu_r, md_r = masks_of(params, batch.ref_rejected_hidden)
        beta = hparams.beta
        l1_u, l1_d = hparams.sparsepo_l1_u, hparams.sparsepo_l1_d
        if not independent:  # the authors' halving for the shared mask
            l1_u, l1_d = l1_u / 2.0, l1_d / 2.0
        c, r = batch.policy_chosen, batch.policy_rejected
        per, parts = sparsepo_loss(c.token, r.token, batch.ref_chosen_token,
                                   batch.ref_rejected_token, kl_c, kl_r, batch.chosen_mask,
                                   batch.rejected_mask, mu_c, mu_r, md_c, md_r, beta=beta,
                                   l1_u=l1_u, l1_d=l1_d)
        total = jnp.mean(per)
        # TDPO's implicit rewards beta (U + D): their margin is beta * logits, the loss's argument.
        metrics = losses.preference_metrics(beta * (parts["U_chosen"] + parts["D_chosen"]),
                                            beta * (parts["U_rejected"] + parts["D_rejected"]))
        sg = jax.lax.stop_gradient
        both = lambda a, b: jnp.concatenate([a, b])  # noqa: E731
        resp = both(batch.chosen_mask, batch.rejected_mask)
        mean_u, sparse_u = mask_stats(sg(both(mu_c, mu_r)), resp)
        metrics.update({
            "train/loss": sg(total),
            "train/logps_chosen": sg(jnp.mean(c.sum)),
            "train/logps_rejected": sg(jnp.mean(r.sum)),
            "train/seq_kl_chosen": sg(jnp.mean(jnp.sum(kl_c * batch.chosen_mask, -1))),
            "train/seq_kl_rejected": sg(jnp.mean(jnp.sum(kl_r * batch.rejected_mask, -1))),
            "train/mask_mean": mean_u, "train/mask_sparsity": sparse_u})
        if independent:
            mean_d, sparse_d = mask_stats(sg(both(md_c, md_r)), resp)
            metrics.update({"train/kl_mask_mean": mean_d, "train/kl_mask_sparsity": sparse_d})
        return total, metrics

    return Objective(init, loss, needs_reference_hidden=True)


SPARSEPO = objective(independent=False)  # "sparsepo": the common mask (the authors' default)
SPARSEPO_INDEPENDENT = objective(independent=True)  # "sparsepo_independent"
