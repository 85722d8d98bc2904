"""Language-model preference optimisation as pure objectives over token log-probabilities.

* `losses`: the DPO family as one function (every loss type of TRL's DPOTrainer, the f-DPO
  divergences), SimPO and ORPO.
* `sequence`: sequence log-probabilities of responses (`sequence_logps`, `response_logps`).
* `lexicon`: task (a), controlled generation with an exact lexicon reward on a synthetic language,
  a tiny Llama pre-trained on it as the reference, Bradley-Terry preference pairs.
* `objectives`: what the recipe trains with (the DPO family, SimPO, ORPO, SparsePO, A-LoL and its
  reward-weighted relatives), `(init, loss)` pairs; `sparsepo`, `alol` hold the last two.
* `recipe`: `make_train(PrefConfig) -> train(key, hparams, reference, data)`, one jitted run,
  vmappable over seeds and hyperparameters, with in-jit evaluation (true reward, KL, win rate,
  entropy).
* `prompts`, `advantages`, `rlhf`: online RL on the language model (PPO with a value head, GRPO,
  RLOO, RTO's token rewards), rollout -> reward -> update in one jitted step, on prompt sets with a
  reward of arrays (task (a)'s lexicon, the arithmetic verifier, the code sandbox).
* `cpl`, `cpl_segments`: Contrastive Preference Learning on an lfx environment's segment
  preferences (labelled by an oracle SAC's advantages).
* `reward_model`, `shift`: an explicit Bradley-Terry reward model (a value head on the LM), DPO's
  implicit reward, and prompt/response-shifted pair sets of task (a) (Lin et al. 2024).
* `main`: the training-script body every `lfx.pref` recipe shares (experiments/pref*.py).
"""

from lfx.pref.advantages import group_relative_advantages, leave_one_out_advantages
from lfx.pref.cpl import CPLConfig, cpl_loss
from lfx.pref.data import PreferenceData, TaskSpec
from lfx.pref.losses import (
    F_DIVERGENCES,
    LOSS_TYPES,
    check_loss_args,
    f_divergence_scores,
    orpo_loss,
    preference_loss,
    preference_loss_and_metrics,
    preference_metrics,
    simpo_loss,
)
from lfx.pref.objectives import OBJECTIVES, PairBatch
from lfx.pref.prompts import PromptData, PromptSet
from lfx.pref.recipe import HParams, PrefConfig, make_train
from lfx.pref.rlhf import RLHFConfig
from lfx.pref.sequence import SequenceLogps, response_logps, sequence_logps

__all__ = [
    "F_DIVERGENCES", "LOSS_TYPES", "OBJECTIVES", "CPLConfig", "HParams", "PairBatch", "PrefConfig",
    "PreferenceData", "PromptData", "PromptSet", "RLHFConfig", "SequenceLogps", "TaskSpec",
    "check_loss_args", "cpl_loss", "f_divergence_scores", "group_relative_advantages",
    "leave_one_out_advantages", "make_train", "orpo_loss", "preference_loss",
    "preference_loss_and_metrics", "preference_metrics", "response_logps", "sequence_logps",
    "simpo_loss",
]
