"""Train a Bradley-Terry reward model (EXRM) on a task's preference pairs and write it.

    python experiments/pref_reward_model.py --workdir=runs/pref/reward_model     # ~1 CPU minute

Writes `<workdir>/reward_model.npz|json` (`lfx.pref.reward_model.save_reward_model`: the SFT
Llama it was trained from and its scalar head), the proxy reward of online RL
(`python experiments/rlhf.py --config=experiments/configs/rlhf.py:ppo_rm
--config.reward_model=<workdir>/reward_model.npz`), and `summary.json`: its accuracy on the pairs
it was trained on, and how well its scores track the true reward on responses the reference
samples for the evaluation prompts -- R^2 of a linear fit over all of them, and within each
quarter of the scores (PF-PPO's reliability diagnostic: Shen et al. 2024 report the reward model
is more reliable at the extremes of its scores).
"""

from __future__ import annotations

import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from lfx.experiment import cli, from_configdict
from lfx.pref import lexicon, reward_model
from lfx.pref.data import TaskSpec

FLAGS = cli.define_flags("pref_reward_model.py:default")


def r_squared(x: np.ndarray, y: np.ndarray) -> float:
    """Squared Pearson correlation of x and y (the R^2 of a least-squares line), 0 if constant."""
    if np.std(x) == 0 or np.std(y) == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    config = cli.get_config()
    spec, rm_cfg, check, hp = from_configdict(config, TaskSpec, reward_model.RewardModelConfig,
                                              reward_model.ProxyCheck,
                                              hparams=reward_model.HParams)
    hp.validate()
    check.validate()
    reference, model, data, meta = lexicon.load_task(spec.task, reward_name=spec.eval_reward)
    rm_cfg = dataclasses.replace(rm_cfg, model=model)
    recipe = reward_model.make_train(rm_cfg)
    wd = cli.open_workdir("pref_reward_model", {
        "task": spec.__dict__, "rm": {k: v for k, v in rm_cfg.__dict__.items() if k != "model"},
        "hparams": hp.__dict__, "check": check.__dict__})
    with wd:
        key = jax.random.key(check.seed)
        state, metrics = jax.jit(recipe.train)(key, hp, reference, data)
        params = recipe.params(state)
        prompts = jnp.tile(data.eval_prompts, (check.num_samples, 1))
        K = meta["config"]["response_len"]
        y = lexicon.sample_responses(reference, model, prompts, jax.random.fold_in(key, 1),
                                     length=K)
        tokens, roles = lexicon.rows(np.asarray(prompts), np.asarray(y))
        scores = np.asarray(reward_model.score_rows(params, model, jnp.asarray(tokens),
                                                    jnp.asarray(roles)))
        true = np.asarray(lexicon.reward(data.reward_weights, y))
        edges = np.quantile(scores, [0.25, 0.5, 0.75])
        bins = np.digitize(scores, edges)
        by_quarter = [r_squared(scores[bins == b], true[bins == b]) for b in range(4)]
        reward_model.save_reward_model(wd.file("reward_model.npz"), params, model, lexicon.tokenizer(),
                                       task=spec.task, seed=check.seed)
        summary = {"train_accuracy": float(metrics["train/accuracy"][-50:].mean()),
                   "num_samples": int(len(true)), "r2_all": r_squared(scores, true),
                   "r2_by_score_quarter": by_quarter,
                   "true_reward_by_score_quarter": [float(true[bins == b].mean()) for b in range(4)],
                   "command": " ".join(["python", *sys.argv])}
        wd.write_json("summary.json", summary)
    print(f"reward model: training accuracy {summary['train_accuracy']:.3f}; R^2 with the true "
          f"reward on {len(true)} reference samples {summary['r2_all']:.3f} (by score quarter: "
          f"{', '.join(f'{v:.3f}' for v in by_quarter)})")
    print(f"Wrote {wd.path}")


if __name__ == "__main__":
    cli.run(main)
