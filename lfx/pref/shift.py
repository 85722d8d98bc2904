"""Held-out and distribution-shifted preference pair sets for task (a) (`lfx.pref.lexicon`).

The evaluation of Lin et al. 2024 (arXiv:2409.03650): a reward model trained on preference pairs is
scored by its accuracy on held-out pairs from the training distribution and on pairs whose prompts
or responses come from elsewhere (their "prompt shift": another domain's prompts; "response shift":
responses of other generator models). Here every set has fresh prompts and is labelled exactly as
the training pairs are, by Bradley-Terry on the exact reward, y1 chosen with probability
sigma(bt_scale (r(y1) - r(y2))), with the task's `bt_scale`. The sets (`SETS`):

    in_distribution  prompts of the task's language, two SFT samples at temperature 1 (the
                     training pairs' distribution; a fresh stream)
    response_hot     the same prompts' distribution, SFT samples at `hot_temperature` (flatter:
                     rarer words, topic words inside responses)
    response_cool    SFT samples at `cool_temperature` (sharper: the SFT model's modes)
    prompt_chain     prompts whose neutral words follow the bigram chain of another language,
                     `make_language(seed + 1)`; SFT samples at temperature 1
    prompt_mood      prompts of the task's language whose responses were sampled (at temperature
                     1) for the same prompt with the topic of opposite mood (mu -> -mu): the
                     response's sentiment contradicts what the prompt's topic predicts

Each set draws from `numpy.random.default_rng([task seed, stream])` and the JAX key
`key(task seed * 1000 + stream)` with its own stream (`STREAMS`; the task itself uses 2 for
pre-training, 3 for the training pairs and 4 for its evaluation prompts), so a set is a
deterministic function of the task. A set is a `PreferenceData` whose `eval_prompts` are its prompts.

Shapes: N = `num_pairs` pairs per set, rows of T = P + L tokens (P = prompt_len + 1, L =
response_len), as the task's training pairs.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from lfx.pref import lexicon
from lfx.pref.data import PreferenceData

SETS = ("in_distribution", "response_hot", "response_cool", "prompt_chain", "prompt_mood")
STREAMS = {name: 5 + i for i, name in enumerate(SETS)}


@dataclasses.dataclass(frozen=True)
class ShiftStudy:
    """The DPORM-vs-EXRM study's own settings (the two recipes have theirs).

    seed / num_seeds: training runs are `jax.random.split(key(seed), num_seeds)`, vmapped.
    num_pairs: pairs in each evaluation set (`SETS`).
    hot_temperature / cool_temperature: the samplers of the response shifts.
    """

    seed: int = 0
    num_seeds: int = 5
    num_pairs: int = 512
    hot_temperature: float = 1.5
    cool_temperature: float = 0.7

    def validate(self) -> None:
        for name in ("num_seeds", "num_pairs"):
            if getattr(self, name) < 1:
                raise ValueError(f"ShiftStudy.{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("hot_temperature", "cool_temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ShiftStudy.{name} must be > 0, got {getattr(self, name)}.")


def opposite_mood_prompts(prompts: np.ndarray, language: lexicon.Language) -> np.ndarray:
    """The prompts with each topic word replaced by the topic of opposite mood: int32 [N, P].

    The moods are evenly spaced in [-0.6, 0.6], so topic mu has a partner -mu; the topic is column 1.
    """
    tok = lexicon.tokenizer()
    topic_ids = np.asarray(tok.encode(" ".join(lexicon.TOPICS)))
    mood = language.topic_mood
    partner = np.argmin(np.abs(mood[:, None] + mood[None, :]), axis=1)
    swap = np.arange(tok.vocab_size)
    swap[topic_ids] = topic_ids[partner]
    out = prompts.copy()
    out[:, 1] = swap[prompts[:, 1]]
    return out


def label_pairs(rng: np.random.Generator, prompts: np.ndarray, y1: np.ndarray, y2: np.ndarray,
                weights: np.ndarray, bt_scale: float) -> dict[str, np.ndarray]:
    """Bradley-Terry labels on the exact reward: prompts [N, P], y1, y2 [N, L] -> the pairs
    (prompts, chosen / rejected [N, L], chosen_reward / rejected_reward [N]), as `make_pairs`."""
    r1, r2 = np.asarray(lexicon.reward(weights, y1)), np.asarray(lexicon.reward(weights, y2))
    first = lexicon.label_pairs(rng, r1, r2, bt_scale)
    return {"prompts": prompts, "chosen": np.where(first[:, None], y1, y2),
            "rejected": np.where(first[:, None], y2, y1), "chosen_reward": np.where(first, r1, r2),
            "rejected_reward": np.where(first, r2, r1)}


def as_preference_data(pairs: dict[str, np.ndarray], weights: np.ndarray) -> PreferenceData:
    """A pair set as `PreferenceData` rows (`lexicon.rows`); its prompts are the eval prompts."""
    chosen_tokens, chosen_roles = lexicon.rows(pairs["prompts"], pairs["chosen"])
    rejected_tokens, rejected_roles = lexicon.rows(pairs["prompts"], pairs["rejected"])
    return PreferenceData(
        chosen_tokens=jnp.asarray(chosen_tokens), chosen_roles=jnp.asarray(chosen_roles),
        rejected_tokens=jnp.asarray(rejected_tokens), rejected_roles=jnp.asarray(rejected_roles),
        eval_prompts=jnp.asarray(pairs["prompts"]), reward_weights=jnp.asarray(weights))


def make_set(name: str, sft_params: dict, task: lexicon.LexiconTaskConfig, weights: np.ndarray,
             study: ShiftStudy) -> dict[str, np.ndarray]:
    """The pair set `name` (one of `SETS`, see the module doc) as `label_pairs`' arrays."""
    if name not in STREAMS:
        raise ValueError(f"Unknown pair set {name!r}; choose from {SETS}.")
    stream = STREAMS[name]
    rng = np.random.default_rng([task.seed, stream])
    language = lexicon.make_language(task.seed + 1 if name == "prompt_chain" else task.seed)
    prompts, _ = lexicon.sample_documents(rng, language, task, study.num_pairs)
    context = opposite_mood_prompts(prompts, language) if name == "prompt_mood" else prompts
    temperature = {"response_hot": study.hot_temperature,
                   "response_cool": study.cool_temperature}.get(name, 1.0)
    k1, k2 = jax.random.split(jax.random.key(task.seed * 1000 + stream))
    model = task.model_config()
    y1, y2 = (np.asarray(lexicon.sample_responses(sft_params, model, jnp.asarray(context), k,
                                                  length=task.response_len,
                                                  temperature=temperature)) for k in (k1, k2))
    return label_pairs(rng, prompts, y1, y2, weights, task.bt_scale)


def make_sets(sft_params: dict, task: lexicon.LexiconTaskConfig, weights: np.ndarray,
              study: ShiftStudy) -> dict[str, PreferenceData]:
    """Every set of `SETS` as `PreferenceData`, in that order."""
    study.validate()
    return {name: as_preference_data(make_set(name, sft_params, task, weights, study), weights)
            for name in SETS}
