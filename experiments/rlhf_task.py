"""Generate lfx.pref's verifiable-reward arithmetic task (RLVR) offline, deterministically from a seed.

    python experiments/rlhf_task.py --workdir=datasets/rlhf/arithmetic              # ~4 CPU minutes
    python experiments/rlhf_task.py --config.sft_steps=3000 --workdir=datasets/rlhf/arithmetic_s3k
    python experiments/rlhf_task.py --config=experiments/configs/rlhf_task.py:arithmetic_tiny \
        --workdir=datasets/rlhf/arithmetic_tiny

Writes `<workdir>/sft_model.npz|json` (the tiny Llama fine-tuned on answers: the reference model
and the policy's initialisation), `prompts.npz` (the RL training and held-out evaluation prompts
with their answers, and every split's problems) and `task.json` (settings, the SFT model's loss,
held-out greedy accuracy and pass@k); see `lfx.pref.arithmetic`. A workdir that already holds a
task is never overwritten.

Configs: experiments/configs/rlhf_task.py (`lfx.pref.arithmetic.ArithmeticTaskConfig`; every
field is settable as `--config.<field>=`).
"""

from __future__ import annotations

import sys

from lfx.experiment import cli, from_configdict
from lfx.pref import arithmetic

FLAGS = cli.define_flags("rlhf_task.py:arithmetic")

def main(argv):
    del argv
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    config = cli.get_config()
    (task,) = from_configdict(config, arithmetic.ArithmeticTaskConfig)
    task.validate()
    wd = cli.open_workdir("rlhf_task_arithmetic", {"task": task.__dict__})
    with wd:
        meta = arithmetic.generate_task(task, wd.file)
        wd.write_json("command.json", {"command": " ".join(["python", *sys.argv])})
    ev = meta["sft_eval"]
    k = task.num_samples
    print(f"SFT loss {meta['sft_final_loss']:.3f} ({meta['sft_train_seconds']:.0f} s); held-out "
          f"greedy accuracy {ev['greedy_accuracy']:.3f}, pass@1 {ev['pass@1']:.3f}, "
          f"pass@{k} {ev[f'pass@{k}']:.3f} (temperature 1, {k} samples).")
    print(f"Wrote the task to {wd.path}")


if __name__ == "__main__":
    cli.run(main)
