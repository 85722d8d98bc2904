"""SparsePO (common and independent masks) on task (a): reward, KL and where the masks sit.

    python experiments/pref_task.py --workdir=datasets/pref/lexicon      # once: task (a)
    python experiments/pref_sparsepo_masks.py                           # 5 seeds, a few CPU minutes
    python experiments/pref_sparsepo_masks.py --beta=0.8 --num_updates=100

Christopoulou et al. 2024 (arXiv:2410.05102) learn token masks from the reference's hidden states
(`lfx.pref.sparsepo`) and claim they concentrate on the tokens that carry the preference (issue 15,
claim (v)). Task (a)'s exact reward is the mean lexicon score of the response words: sentiment
words carry it, neutral words none. Each variant (and DPO, for reference) is trained by
`lfx.pref.recipe` on the task's pairs with the same seeds, vmapped and jitted in one call; then the
trained masks are evaluated on every chosen and rejected response of the pairs and averaged over
sentiment-word tokens and neutral tokens.

Writes `summary.json` in a new workdir (never overwritten): per method the final evaluation's
reward, reference reward, KL and win rate (mean, std, per seed, as experiments/pref.py) and, for
SparsePO, the reward-mask (and, independent, KL-mask) mean and fraction of exact zeros on
sentiment / neutral tokens of chosen / rejected responses; and the command.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import jax
import numpy as np
from absl import app, flags, logging

from lfx.experiment import cli
from lfx.lm.train import target_hidden
from lfx.pref import lexicon, recipe, sparsepo

flags.DEFINE_string("task", "datasets/pref/lexicon", "The generated task (pref_task.py).")
flags.DEFINE_string("workdir", None, "Output folder (default: a new runs/<name>_<time>). Never "
                    "overwritten.")
flags.DEFINE_bool("resume", False, "Unused (no checkpoints); open_workdir reads it.")
flags.DEFINE_integer("num_seeds", 5, "Seeds, vmapped.")
flags.DEFINE_integer("seed", 0, "Base seed.")
flags.DEFINE_integer("num_updates", 300, "Adam updates (experiments/pref.py's dpo: 300).")
flags.DEFINE_integer("batch_size", 64, "Pairs per update.")
flags.DEFINE_float("lr", 1e-3, "Adam learning rate.")
flags.DEFINE_float("beta", 0.1, "beta (the authors use 0.1 on HH, 0.8 on IMDB / TL;DR).")
flags.DEFINE_float("l1_u", 0.0, "The reward mask's L1 weight (the authors' l1_norm_param_u).")
flags.DEFINE_float("l1_d", 0.0, "The KL mask's L1 weight (the authors' l1_norm_param_d).")
flags.DEFINE_list("methods", ["dpo", "sparsepo", "sparsepo_independent"], "What to train.")
FLAGS = flags.FLAGS

VARIANTS = {"sparsepo": sparsepo.SPARSEPO, "sparsepo_independent": sparsepo.SPARSEPO_INDEPENDENT}


def mask_statistics(obj_params: dict, reference: dict, model, data, sentiment: np.ndarray, *,
                    response_len: int) -> dict:
    """Mean mask and fraction of exact zeros on sentiment / neutral tokens of the chosen and
    rejected responses, for one seed's trained masks."""
    out = {}
    for side, tokens, roles in (("chosen", data.chosen_tokens, data.chosen_roles),
                                ("rejected", data.rejected_tokens, data.rejected_roles)):
        h, targets, mask = jax.jit(lambda t, r: target_hidden(reference, model, t, r,
                                                              num_target=response_len))(tokens, roles)
        mu, md = sparsepo.masks_of(obj_params, h)
        keep = np.asarray(mask) > 0
        senti = sentiment[np.asarray(targets)][keep]
        for name, m in (("reward_mask", mu), ("kl_mask", md)):
            v = np.asarray(m)[keep]
            for group, sel in (("sentiment", senti), ("neutral", ~senti)):
                out[f"{name}/{side}/{group}/mean"] = float(v[sel].mean())
                out[f"{name}/{side}/{group}/zeros"] = float(np.mean(v[sel] == 0))
            both = f"{name}/all"
            out.setdefault(f"{both}/sentiment", []).append(v[senti])
            out.setdefault(f"{both}/neutral", []).append(v[~senti])
    for name in ("reward_mask", "kl_mask"):
        for group in ("sentiment", "neutral"):
            v = np.concatenate(out.pop(f"{name}/all/{group}"))
            out[f"{name}/{group}/mean"] = float(v.mean())
            out[f"{name}/{group}/zeros"] = float(np.mean(v == 0))
        out[f"{name}/sentiment_over_neutral"] = (out[f"{name}/sentiment/mean"]
                                                 / max(out[f"{name}/neutral/mean"], 1e-12))
    return out


def _stats(values) -> dict:
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "std": float(v.std()), "per_seed": v.tolist()}


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    reference, model, data, meta = lexicon.load_task(FLAGS.task)
    hp = recipe.HParams(lr=FLAGS.lr, beta=FLAGS.beta, sparsepo_l1_u=FLAGS.l1_u, sparsepo_l1_d=FLAGS.l1_d)
    hp.validate()
    base = recipe.PrefConfig(model=model, num_updates=FLAGS.num_updates,
                             batch_size=FLAGS.batch_size, eval_every=FLAGS.num_updates)
    run_config = {"task": FLAGS.task, "num_seeds": FLAGS.num_seeds, "seed": FLAGS.seed,
                  "config": {k: v for k, v in base.__dict__.items() if k != "model"},
                  "hparams": dataclasses.asdict(hp), "methods": FLAGS.methods}
    wd = cli.open_workdir("pref_sparsepo_masks", run_config)
    sentiment = np.asarray(data.reward_weights) != 0  # the lexicon reward's sentiment words
    keys = jax.random.split(jax.random.key(FLAGS.seed), FLAGS.num_seeds)
    runs = {}
    with wd:
        for method in FLAGS.methods:
            cfg = dataclasses.replace(base, objective=method)
            pref = recipe.make_train(cfg)
            start = time.time()
            states, m = jax.jit(jax.vmap(pref.train, (0, None, None, None)))(keys, hp, reference,
                                                                            data)
            row = {k.split("/")[1]: _stats(m[k][:, -1]) for k in recipe.EVAL_METRICS}
            row["train_loss"] = _stats(m["train/loss"][:, -1])
            line = (f"{method}: reward {row['reward']['mean']:+.3f} +- {row['reward']['std']:.3f} "
                    f"(reference {row['reference_reward']['mean']:+.3f}), kl "
                    f"{row['kl']['mean']:.2f} +- {row['kl']['std']:.2f}, win "
                    f"{row['win_rate']['mean']:.3f}")
            if method in VARIANTS:
                per_seed = [mask_statistics(jax.tree.map(lambda a, s=s: a[s],
                                                         states.trainable["objective"]),
                                            reference, model, data, sentiment,
                                            response_len=cfg.response_len)
                            for s in range(FLAGS.num_seeds)]
                row["masks"] = {k: _stats([p[k] for p in per_seed]) for k in per_seed[0]}
                row["train_mask_mean"] = _stats(m["train/mask_mean"][:, -1])
                row["train_mask_sparsity"] = _stats(m["train/mask_sparsity"][:, -1])
                mk = row["masks"]
                line += (f"; reward mask on sentiment {mk['reward_mask/sentiment/mean']['mean']:.3f}"
                         f" vs neutral {mk['reward_mask/neutral/mean']['mean']:.3f} (ratio "
                         f"{mk['reward_mask/sentiment_over_neutral']['mean']:.3f} +- "
                         f"{mk['reward_mask/sentiment_over_neutral']['std']:.3f}), zeros "
                         f"{mk['reward_mask/sentiment/zeros']['mean']:.3f} / "
                         f"{mk['reward_mask/neutral/zeros']['mean']:.3f}")
                if method == "sparsepo_independent":
                    line += (f"; KL mask sentiment {mk['kl_mask/sentiment/mean']['mean']:.3f} vs "
                             f"neutral {mk['kl_mask/neutral/mean']['mean']:.3f}")
            row["seconds"] = time.time() - start
            print(line + f" [{row['seconds']:.0f} s]", flush=True)
            runs[method] = row
        wd.write_json("summary.json", {
            "task": FLAGS.task, "runs": runs, "config": run_config, "task_metadata": meta,
            "command": " ".join(["python", *sys.argv])})
    print(f"Wrote {wd.path}")


if __name__ == "__main__":
    app.run(main)
