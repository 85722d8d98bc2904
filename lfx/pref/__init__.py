"""Language-model preference optimisation as pure objectives over token log-probabilities.

* `losses`: the DPO family as one function (every loss type of TRL's DPOTrainer, the f-DPO
  divergences), SimPO and ORPO.
* `sequence`: sequence log-probabilities of responses (`sequence_logps`, `response_logps`).
* `lexicon`: task (a), controlled generation with an exact lexicon reward on a synthetic language,
  a tiny Llama pre-trained on it as the reference, Bradley-Terry preference pairs.
* `recipe`: `make_train(PrefConfig) -> train(key, hparams, reference, data)`, one jitted run,
  vmappable over seeds and hyperparameters, with in-jit evaluation (true reward, KL, win rate).
"""

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
from lfx.pref.recipe import HParams, PrefConfig, make_train
from lfx.pref.sequence import SequenceLogps, response_logps, sequence_logps

__all__ = [
    "F_DIVERGENCES", "LOSS_TYPES", "HParams", "PrefConfig", "PreferenceData", "SequenceLogps",
    "TaskSpec", "check_loss_args", "f_divergence_scores", "make_train", "orpo_loss",
    "preference_loss", "preference_loss_and_metrics", "preference_metrics", "response_logps",
    "sequence_logps", "simpo_loss",
]
