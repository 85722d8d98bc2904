"""RCSL vs Dichotomy of Control on the Bernoulli bandit (arXiv:2210.13435 Sec. 5.1): target -> achieved.

    python experiments/offline_doc.py --workdir runs/offline_doc --num_seeds 5 --num_steps 3000

Trains, for each variant, `num_seeds` seeds as one `jax.vmap(train)` on one dataset (the code's
`create_dataset.sh`: 1000 one-step trajectories, alpha 0.1, from --data_seed) and prints, for each target
return R*, the exact expected return of the conditioned policy (mean +- std over seeds). Variants: RCSL,
DoC as the released code minimises its contrastive term ("code"), and DoC with the paper's MI penalty
("adversarial"); see lfx/offline/doc.py. Writes results.json and targets.png under --workdir and refuses
to overwrite a workdir that already holds results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from lfx.offline import doc
from lfx.offline import stochastic_tasks as st

VARIANTS = {"rcsl": ("rcsl", "code"), "doc_code": ("doc", "code"), "doc_adversarial": ("doc", "adversarial")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", required=True)
    p.add_argument("--num_seeds", type=int, default=5)
    p.add_argument("--num_steps", type=int, default=10_000)  # run_tabular.py's default
    p.add_argument("--alpha", type=float, default=0.1)
    p.add_argument("--num_trajectories", type=int, default=1000)
    p.add_argument("--data_seed", type=int, default=0)
    p.add_argument("--energy_weight", type=float, default=1.0)
    p.add_argument("--hidden_sizes", default="32", help="comma-separated; '' for tables (the code's model)")
    p.add_argument("--targets", default="0,0.1,0.5,0.9,1")
    p.add_argument("--variants", default=",".join(VARIANTS))
    args = p.parse_args()

    out_json = os.path.join(args.workdir, "results.json")
    if os.path.exists(out_json):
        raise SystemExit(f"{out_json} exists; pick another --workdir.")
    os.makedirs(args.workdir, exist_ok=True)

    task = st.bernoulli_bandit(args.alpha)
    data = st.generate_dataset(jax.random.key(args.data_seed), task, args.num_trajectories)
    targets = jnp.asarray([float(x) for x in args.targets.split(",")], jnp.float32)
    hidden = tuple(int(h) for h in args.hidden_sizes.split(",") if h)
    keys = jax.vmap(jax.random.key)(jnp.arange(args.num_seeds))
    hparams = doc.HParams(energy_weight=args.energy_weight)
    results = {"args": vars(args), "targets": np.asarray(targets).tolist(),
               "arm_means": np.asarray(task.reward_probs).tolist(), "variants": {}}
    for name in args.variants.split(","):
        algorithm, mi_mode = VARIANTS[name]
        config = doc.Config(num_steps=args.num_steps, hidden_sizes=hidden, mi_mode=mi_mode)
        recipe = doc.make_train(algorithm, config, data, task)
        start = time.time()
        state, metrics = jax.jit(jax.vmap(recipe.train, (0, None)))(keys, hparams)
        achieved = np.asarray(jax.vmap(recipe.evaluate, (0, None))(state.params, targets))  # [seeds, G]
        results["variants"][name] = {"achieved": achieved.tolist(), "seconds": time.time() - start,
                                     "final_loss": np.asarray(metrics["train/loss"][:, -100:].mean(1)).tolist()}
    with open(out_json, "w") as f:
        json.dump(results, f, indent=1)

    names = list(results["variants"])
    print("| target R* | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for g, t in enumerate(results["targets"]):
        cells = []
        for n in names:
            a = np.asarray(results["variants"][n]["achieved"])[:, g]
            cells.append(f"{a.mean():.3f} ± {a.std():.3f}")
        print(f"| {t:g} | " + " | ".join(cells) + " |")
    print(f"best arm {max(results['arm_means']):.2f}; seeds 0..{args.num_seeds - 1}; data seed {args.data_seed}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 4))
    t = np.asarray(results["targets"])
    for n in names:
        a = np.asarray(results["variants"][n]["achieved"])
        ax.errorbar(t, a.mean(0), yerr=a.std(0), marker="o", capsize=3, label=n)
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="achieved = target")
    ax.axhline(max(results["arm_means"]), color="gray", ls="--", lw=1, label="best arm")
    ax.set_xlabel("target return R*")
    ax.set_ylabel("achieved expected return")
    ax.set_title(f"Bernoulli bandit (alpha={args.alpha}), {args.num_seeds} seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.workdir, "targets.png"), dpi=120)


if __name__ == "__main__":
    main()
