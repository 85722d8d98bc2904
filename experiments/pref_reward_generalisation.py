"""DPO's implicit reward (DPORM) against an explicit Bradley-Terry reward model (EXRM) under shift.

    python experiments/pref_task.py --workdir=datasets/pref/lexicon      # once: task (a)
    python experiments/pref_reward_generalisation.py                    # 5 seeds, a few CPU minutes
    python experiments/pref_reward_generalisation.py --config.rm_hparams.lr=1e-3

Lin et al. 2024 (arXiv:2409.03650) claim that DPORM, r(x, y) = beta (log pi_dpo(y|x) -
log pi_ref(y|x)), ranks held-out preference pairs about as well as an EXRM trained on the same
pairs in distribution but generalises worse: across five shifted validation sets its accuracy is
on average 3 points (at most 7) lower. Here, on task (a): DPO (`lfx.pref.recipe`, loss "sigmoid")
and the EXRM (`lfx.pref.reward_model`, the SFT Llama with a scalar head) are trained on the task's
pairs, every seed in one vmapped, jitted run each, then both score the training pairs and every set
of `lfx.pref.shift.SETS` (held-out in-distribution pairs, two response shifts, two prompt shifts).

Writes `summary.json` (per set and model: preference accuracy per seed, mean and std; the drop from
in-distribution per seed; the gap EXRM - DPORM; the exact reward's own accuracy on the set, the
ceiling set by the Bradley-Terry label noise; the command) and `table.md` (the same as a table).
"""

from __future__ import annotations

import dataclasses
import sys
import time

import jax
import numpy as np
from absl import logging

from lfx.experiment import check_finite_hparams, cli, from_configdict
from lfx.pref import lexicon, recipe, reward_model, shift
from lfx.pref.data import PreferenceData, TaskSpec

FLAGS = cli.define_flags("pref_reward_generalisation.py:default")
MODELS = ("dporm", "exrm")


def set_accuracies(policy: dict, rm_params: dict, reference: dict, sets: dict[str, PreferenceData],
                   *, model, beta: float, response_len: int) -> dict[str, dict[str, jax.Array]]:
    """One seed's preference accuracy of DPORM (`policy`) and EXRM (`rm_params`) on every set."""
    out = {m: {} for m in MODELS}
    for name, d in sets.items():
        def dporm(tokens, roles):
            return reward_model.implicit_reward(policy, reference, model, tokens, roles, beta,
                                                response_len)

        def exrm(tokens, roles):
            return reward_model.score_rows(rm_params, model, tokens, roles)

        for m, scorer in zip(MODELS, (dporm, exrm)):
            out[m][name] = reward_model.preference_accuracy(
                scorer(d.chosen_tokens, d.chosen_roles), scorer(d.rejected_tokens, d.rejected_roles))
    return out


def oracle_accuracy(d: PreferenceData, response_len: int) -> float:
    """The exact reward's accuracy on a set's labels (< 1: Bradley-Terry labels are noisy)."""
    reward = lambda tokens: lexicon.reward(d.reward_weights, tokens[:, -response_len:])  # noqa: E731
    return float(reward_model.preference_accuracy(reward(d.chosen_tokens), reward(d.rejected_tokens)))


def _stats(x: np.ndarray) -> dict:
    return {"mean": float(x.mean()), "std": float(x.std()), "per_seed": x.tolist()}


def summarise(acc: dict[str, dict[str, np.ndarray]], oracle: dict[str, float]) -> list[dict]:
    """Per set: each model's accuracy, its drop from in-distribution, and the gap EXRM - DPORM."""
    base = "in_distribution"
    rows = []
    for name, ceiling in oracle.items():
        row = {"set": name, "oracle_accuracy": ceiling,
               "gap_exrm_minus_dporm": _stats(acc["exrm"][name] - acc["dporm"][name])}
        for m in MODELS:
            row[m] = _stats(acc[m][name])
            row[f"{m}_drop"] = _stats(acc[m][base] - acc[m][name])
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    head = ("| set | exact reward | DPORM | EXRM | EXRM - DPORM | drop DPORM | drop EXRM |\n"
            "|---|---|---|---|---|---|---|")
    fmt = lambda s: f"{s['mean']:.3f} ± {s['std']:.3f}"  # noqa: E731
    lines = [f"| {r['set']} | {r['oracle_accuracy']:.3f} | {fmt(r['dporm'])} | {fmt(r['exrm'])} | "
             f"{fmt(r['gap_exrm_minus_dporm'])} | {fmt(r['dporm_drop'])} | {fmt(r['exrm_drop'])} |"
             for r in rows]
    return "\n".join([head, *lines])


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    config = cli.get_config()
    spec, study, dpo_cfg, dpo_hp, rm_cfg, rm_hp = from_configdict(
        config, TaskSpec, shift.ShiftStudy, dpo=recipe.PrefConfig, dpo_hparams=recipe.HParams,
        rm=reward_model.RewardModelConfig, rm_hparams=reward_model.HParams)
    study.validate()
    for hp in (dpo_hp, rm_hp):
        check_finite_hparams(hp)
        hp.validate()
    reference, model, data, meta = lexicon.load_task(spec.task, reward_name=spec.eval_reward)
    task = lexicon.LexiconTaskConfig(**meta["config"])
    dpo_cfg = dataclasses.replace(dpo_cfg, model=model)
    rm_cfg = dataclasses.replace(rm_cfg, model=model)
    dpo = recipe.make_train(dpo_cfg)
    recipe.check_data(dpo_cfg, data)
    exrm = reward_model.make_train(rm_cfg)
    run_config = {"task": spec.__dict__, "study": study.__dict__,
                  "dpo": {k: v for k, v in dpo_cfg.__dict__.items() if k != "model"},
                  "dpo_hparams": dpo_hp.__dict__,
                  "rm": {k: v for k, v in rm_cfg.__dict__.items() if k != "model"},
                  "rm_hparams": rm_hp.__dict__}
    wd = cli.open_workdir("pref_reward_generalisation", run_config)
    with wd:
        weights = lexicon.reward_weights(spec.eval_reward, task.seed)
        sets = {"train": data, **shift.make_sets(reference, task, weights, study)}
        keys = jax.random.split(jax.random.key(study.seed), study.num_seeds)
        over_seeds = (0, None, None, None)
        print(f"DPO and the reward model on {spec.task} ({data.num_pairs} pairs), "
              f"{study.num_seeds} seeds; evaluation sets of {study.num_pairs} pairs: "
              f"{', '.join(shift.SETS)}.", flush=True)
        start = time.time()
        dpo_state, dpo_metrics = jax.jit(jax.vmap(dpo.train, over_seeds))(keys, dpo_hp, reference,
                                                                           data)
        rm_state, rm_metrics = jax.jit(jax.vmap(exrm.train, over_seeds))(keys, rm_hp, reference,
                                                                         data)
        policies = jax.vmap(lambda s: dpo.policy(s, reference))(dpo_state)
        evaluate = jax.jit(jax.vmap(
            lambda p, q: set_accuracies(p, q, reference, sets, model=model, beta=dpo_hp.beta,
                                        response_len=dpo_cfg.response_len)))
        acc = jax.tree.map(np.asarray, evaluate(policies, exrm.params(rm_state)))
        seconds = time.time() - start
        oracle = {name: oracle_accuracy(d, dpo_cfg.response_len) for name, d in sets.items()}
        rows = summarise(acc, oracle)
        table = markdown_table(rows)
        print(table)
        print(f"final training loss: DPO {float(dpo_metrics['train/loss'][:, -1].mean()):.4f}, "
              f"reward model {float(rm_metrics['train/loss'][:, -1].mean()):.4f}; "
              f"{seconds:.0f} s for training and evaluation.")
        command = " ".join(["python", *sys.argv])
        if wd.primary:
            with open(wd.file("table.md"), "w") as f:
                f.write(f"`{command}`\n\n{table}\n")
        wd.write_json("summary.json", {
            "sets": rows, "num_seeds": study.num_seeds, "task": spec.task,
            "eval_reward": spec.eval_reward, "config": run_config, "task_metadata": meta,
            "final_train_loss": {"dpo": float(dpo_metrics["train/loss"][:, -1].mean()),
                                 "exrm": float(rm_metrics["train/loss"][:, -1].mean())},
            "seconds": seconds, "command": command})
    print(f"Wrote {wd.path}")


if __name__ == "__main__":
    cli.run(main)
