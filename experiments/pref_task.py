"""Generate lfx.pref's controlled-generation task (a) offline, deterministically from a seed.

    python experiments/pref_task.py --workdir=datasets/pref/lexicon            # ~1 CPU minute
    python experiments/pref_task.py --config.seed=1 --workdir=datasets/pref/lexicon_seed1

Writes `<workdir>/sft_model.npz|json` (the tiny Llama pre-trained on the synthetic corpus: the
reference model), `pairs.npz` (prompts, chosen / rejected responses and their exact rewards, and
the evaluation prompts) and `task.json` (settings and statistics); see `lfx.pref.lexicon`. A
workdir that already holds a task is never overwritten.
"""

from __future__ import annotations

import sys

from absl import logging

from lfx.experiment import cli, from_configdict
from lfx.pref import lexicon

FLAGS = cli.define_flags("pref_task.py:lexicon")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    config = cli.get_config()
    (task,) = from_configdict(config, lexicon.LexiconTaskConfig)
    task.validate()
    wd = cli.open_workdir("pref_task_lexicon", {"task": task.__dict__})
    with wd:
        meta = lexicon.generate_task(task, wd.file)
        wd.write_json("command.json", {"command": " ".join(["python", *sys.argv])})
    print(f"SFT pre-training loss {meta['pretrain_final_loss']:.3f}; corpus reward "
          f"{meta['corpus_reward_mean']:+.3f}; pairs: chosen reward {meta['chosen_reward_mean']:+.3f}, "
          f"rejected {meta['rejected_reward_mean']:+.3f}, {meta['tied_pairs']} ties.")
    print(f"Wrote the task to {wd.path}")


if __name__ == "__main__":
    cli.run(main)
