"""A preference data set as arrays: what `lfx.pref.recipe` trains on and evaluates with."""

from __future__ import annotations

import dataclasses

import jax
from flax import struct


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Where an experiment's preference data comes from.

    task: folder of a generated task (`experiments/pref_task.py --workdir=<task>`).
    eval_reward: the reward evaluation scores with (`lexicon.REWARDS`; the pairs are always
      labelled by "lexicon", so another name is a held-out reward).
    token_model: "" or RTO's DPO-trained policy for `lfx.pref.rlhf` (a `policy_<setting>.npz`
      written by `experiments/pref.py --save_policy`).
    reward_model: "" or a learned reward model for `lfx.pref.rlhf`'s reward "reward_model" (a
      `reward_model.npz` written by experiments/pref_reward_model.py).
    """

    task: str = "datasets/pref/lexicon"
    eval_reward: str = "lexicon"
    token_model: str = ""
    reward_model: str = ""


@struct.dataclass
class PreferenceData:
    """A preference data set and what evaluation needs (arrays only; an argument of `train`).

    chosen_tokens, chosen_roles, rejected_tokens, rejected_roles: int32 [N, T] left-padded
      prompt + response rows (`lfx.lm.encode_prompt_target` / `lexicon.rows` layout).
    eval_prompts: int32 [E, P] prompts of the evaluation (every row P tokens, no padding).
    reward_weights: float32 [V], the exact reward r(y) = mean_t w[y_t] (`lexicon.reward`).
    chosen_reward, rejected_reward: float32 [N], the labelling reward R(x, y) of each response
      (A-LoL's offline rewards, `lfx.pref.alol`); None where the data carry none.
    """

    chosen_tokens: jax.Array
    chosen_roles: jax.Array
    rejected_tokens: jax.Array
    rejected_roles: jax.Array
    eval_prompts: jax.Array
    reward_weights: jax.Array
    chosen_reward: jax.Array | None = None
    rejected_reward: jax.Array | None = None

    @property
    def num_pairs(self) -> int:
        return self.chosen_tokens.shape[0]
