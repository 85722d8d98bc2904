"""Task (a): controlled generation with an exact lexicon reward, on a synthetic language.

The analogue of the DPO paper's controlled-sentiment task (Rafailov et al. 2023, arXiv:2305.18290,
Sec. 6.1: IMDb prefixes, GPT-2, a sentiment classifier as the reward) that runs offline on a CPU:

* **Language.** Words are tokens (`lfx.lm.WordTokenizer`): 8 topic words, 32 neutral words, 12
  positive and 12 negative sentiment words. A document is a prompt (a topic word and 3 neutral
  words) and a response of `response_len` words. Neutral words follow a fixed sparse bigram chain;
  each response word is, with probability `sentiment_rate`, a sentiment word, positive with
  probability (1 + m) / 2 where the document's mood m = clip(mu_topic + mood_noise * N(0, 1), -1, 1)
  depends on the prompt's topic. Everything is drawn from `numpy.random.default_rng(seed)`.
* **Reward (exact).** r(x, y) = (1 / L) sum_t w[y_t], w = +1 on positive words, -1 on negative
  words, 0 elsewhere: r is in [-1, 1]. `reward_weights` also builds held-out rewards
  ("intensity": per-word magnitudes in [0.5, 1.5]; "subset": only half of the lexicon counts).
* **SFT model.** A tiny Llama pre-trained on the corpus by next-token cross-entropy (the DPO
  paper's SFT step); it is both the reference and the policy's initialisation.
* **Preference pairs.** For fresh prompts, two responses sampled from the SFT model at temperature
  1 and labelled by Bradley-Terry on the exact reward: y1 is chosen with probability
  sigma(bt_scale * (r1 - r2)).

Shapes: P = prompt_len + 1 (a <bos> first), L = response_len; preference rows are T = P + L
tokens with roles PAD/PROMPT/TARGET as `lfx.lm.encode_prompt_target` (no padding: every prompt
and response has the same length).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lfx.lm.config import LlamaConfig, tiny_config
from lfx.lm.generate import PROMPT_BUCKET, TokenFSM, generate
from lfx.lm.io import load_lm, load_npz, save_lm, save_npz
from lfx.lm.llama import init_params
from lfx.lm.train import PROMPT, TARGET, train_lm
from lfx.lm.word_tokenizer import WordTokenizer
from lfx.pref.data import PreferenceData
from lfx.pref.prompts import PromptData, PromptSet, register_reward

TOPICS = ("film", "book", "meal", "hotel", "game", "song", "trip", "class")
NEUTRAL = ("the", "a", "was", "is", "and", "but", "it", "very", "quite", "so", "we", "they",
           "this", "that", "with", "of", "in", "on", "at", "time", "day", "story", "place", "food",
           "music", "people", "end", "start", "part", "view", "room", "light")
POSITIVE = ("good", "great", "fine", "happy", "lovely", "superb", "bright", "warm", "fun",
            "clever", "brave", "calm")
NEGATIVE = ("bad", "awful", "poor", "sad", "dull", "boring", "grim", "cold", "weak", "rude",
            "ugly", "noisy")
REWARDS = ("lexicon", "intensity", "subset")


def tokenizer() -> WordTokenizer:
    """The task's vocabulary (67 ids: 3 specials, topics, neutral, positive, negative words)."""
    return WordTokenizer(TOPICS + NEUTRAL + POSITIVE + NEGATIVE)


@dataclasses.dataclass(frozen=True)
class LexiconTaskConfig:
    """Everything that fixes the generated task (the seed included); stored in its metadata."""

    seed: int = 0
    prompt_len: int = 4
    response_len: int = 12
    sentiment_rate: float = 0.35
    mood_noise: float = 0.5
    num_pretrain_docs: int = 16384
    pretrain_steps: int = 1500
    pretrain_batch: int = 64
    pretrain_lr: float = 3e-3
    dim: int = 64
    n_layers: int = 2
    hidden_dim: int = 128
    num_pairs: int = 2048
    num_eval_prompts: int = 256
    bt_scale: float = 50.0

    def validate(self) -> None:
        if self.prompt_len < 1 or self.response_len < 1:
            raise ValueError("prompt_len and response_len must be >= 1.")
        if not 0.0 < self.sentiment_rate < 1.0:
            raise ValueError(f"sentiment_rate must be in (0, 1), got {self.sentiment_rate}.")
        for name in ("num_pretrain_docs", "pretrain_steps", "pretrain_batch", "num_pairs",
                     "num_eval_prompts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.pretrain_batch > self.num_pretrain_docs:
            raise ValueError("pretrain_batch must not exceed num_pretrain_docs.")
        if not self.bt_scale > 0:
            raise ValueError(f"bt_scale must be > 0, got {self.bt_scale}.")

    def model_config(self) -> LlamaConfig:
        return tiny_config(tokenizer().vocab_size, dim=self.dim, n_layers=self.n_layers,
                           hidden_dim=self.hidden_dim,
                           max_seq_len=PROMPT_BUCKET + self.response_len)


class Language(NamedTuple):
    """The generative process of the corpus (NumPy arrays over token ids)."""

    chain: np.ndarray  # float [32, 32], bigram probabilities between neutral words
    topic_mood: np.ndarray  # float [8], mu of each topic


def _ids(words: tuple[str, ...]) -> np.ndarray:
    tok = tokenizer()
    return np.array([tok.encode(w)[0] for w in words], np.int32)


def make_language(seed: int) -> Language:
    """A sparse bigram chain (4 successors per neutral word, Dirichlet(1) weights) and topic moods
    evenly spaced in [-0.6, 0.6], both shuffled by `seed`."""
    rng = np.random.default_rng([seed, 0])
    n = len(NEUTRAL)
    chain = np.zeros((n, n))
    for i in range(n):
        succ = rng.choice(n, size=4, replace=False)
        chain[i, succ] = rng.dirichlet(np.ones(4))
    mood = rng.permutation(np.linspace(-0.6, 0.6, len(TOPICS)))
    return Language(chain, mood)


def sample_documents(rng: np.random.Generator, language: Language, config: LexiconTaskConfig,
                     n: int) -> tuple[np.ndarray, np.ndarray]:
    """n documents of the corpus: (prompts int32 [n, P] with <bos> first, responses int32 [n, L])."""
    topic_ids, neutral_ids = _ids(TOPICS), _ids(NEUTRAL)
    pos_ids, neg_ids = _ids(POSITIVE), _ids(NEGATIVE)
    topic = rng.integers(len(TOPICS), size=n)
    mood = np.clip(language.topic_mood[topic] + config.mood_noise * rng.standard_normal(n), -1, 1)
    state = rng.integers(len(NEUTRAL), size=n)
    cdf = np.cumsum(language.chain, axis=1)

    def step(state):
        u = rng.random(n)[:, None]
        return np.minimum((u > cdf[state]).sum(1), len(NEUTRAL) - 1)

    prompt = [np.full(n, tokenizer().bos_id), topic_ids[topic], neutral_ids[state]]
    for _ in range(config.prompt_len - 2):
        state = step(state)
        prompt.append(neutral_ids[state])
    response = []
    for _ in range(config.response_len):
        sentiment = rng.random(n) < config.sentiment_rate
        positive = rng.random(n) < (1 + mood) / 2
        word = np.where(positive, pos_ids[rng.integers(len(POSITIVE), size=n)],
                        neg_ids[rng.integers(len(NEGATIVE), size=n)])
        nxt = step(state)
        state = np.where(sentiment, state, nxt)
        response.append(np.where(sentiment, word, neutral_ids[nxt]))
    return (np.stack(prompt[:config.prompt_len + 1], 1).astype(np.int32),
            np.stack(response, 1).astype(np.int32))


def reward_weights(name: str = "lexicon", seed: int = 0) -> np.ndarray:
    """w float32 [V] of a reward r(y) = mean_t w[y_t] (see the module doc); `REWARDS` lists names."""
    if name not in REWARDS:
        raise ValueError(f"Unknown reward {name!r}; choose from {REWARDS}.")
    w = np.zeros(tokenizer().vocab_size, np.float32)
    pos, neg = _ids(POSITIVE), _ids(NEGATIVE)
    w[pos], w[neg] = 1.0, -1.0
    rng = np.random.default_rng([seed, 1])
    if name == "intensity":
        w[pos] *= rng.uniform(0.5, 1.5, len(pos))
        w[neg] *= rng.uniform(0.5, 1.5, len(neg))
    elif name == "subset":
        w[rng.permutation(pos)[: len(pos) // 2]] = 0.0
        w[rng.permutation(neg)[: len(neg) // 2]] = 0.0
    return w


def reward(weights: jax.Array, responses: jax.Array) -> jax.Array:
    """r = mean_t w[y_t]: weights [V], responses int [..., L] -> float32 [...]."""
    return jnp.mean(jnp.asarray(weights)[responses], axis=-1)


def response_fsm(vocab_size: int) -> TokenFSM:
    """One state, every word allowed, no special token and no final state: `generate` then
    samples exactly `max_new_tokens` words (fixed-length responses)."""
    allowed = np.zeros((1, vocab_size), np.int32)
    allowed[0, :3] = -1
    return TokenFSM(transitions=jnp.asarray(allowed), start=jnp.int32(0),
                        final=jnp.zeros((1,), bool))


def prompt_data(data: PreferenceData, response_len: int) -> PromptData:
    """The task's prompts for online RL (`lfx.pref.rlhf`, reward "lexicon"): the pairs' prompts
    (the first T - response_len columns of the chosen rows) for training, the evaluation prompts,
    the reward's weights and the fixed-length `response_fsm`."""
    train = data.chosen_tokens[:, : data.chosen_tokens.shape[1] - response_len]
    full = lambda a: jnp.full((a.shape[0],), a.shape[1], jnp.int32)  # noqa: E731
    return PromptData(train=PromptSet(train, full(train)),
                      eval=PromptSet(data.eval_prompts, full(data.eval_prompts)),
                      reward_params={"lexicon": data.reward_weights},
                      fsm=response_fsm(data.reward_weights.shape[0]))


def _prompt_reward(weights, rows, responses, lengths, model):
    del rows, lengths, model  # fixed-length responses (`response_fsm`)
    return reward(weights, responses)


def load_prompt_task(path: str, eval_reward: str = "lexicon"
                     ) -> tuple[dict, LlamaConfig, PromptData, dict]:
    """`load_task` with the pairs turned into `prompt_data` (the reward registry's loader)."""
    params, model, data, meta = load_task(path, reward_name=eval_reward)
    return params, model, prompt_data(data, meta["config"]["response_len"]), meta


def _token_credit(weights, rows, responses, lengths, model):
    """r = mean_t w[y_t] credited to its tokens: w[y_t] / L, [B, L]."""
    del rows, lengths, model
    return jnp.asarray(weights)[responses] / responses.shape[-1]


register_reward("lexicon", _prompt_reward, load=load_prompt_task, token_fn=_token_credit)


def sample_responses(params: dict, config: LlamaConfig, prompts: jax.Array, key: jax.Array, *,
                     length: int, temperature: float = 1.0) -> jax.Array:
    """Responses of `length` words sampled for every prompt: prompts int32 [B, P] -> [B, L].

    `lfx.lm.generate` with `response_fsm` (jittable and vmappable; `temperature` static, 0 greedy).
    """
    B, P = prompts.shape
    out, _ = generate(params, config, prompts, jnp.full((B,), P, jnp.int32), key=key,
                          max_new_tokens=length, temperature=temperature,
                          fsm=response_fsm(config.vocab_size))
    return out


def rows(prompts: np.ndarray, responses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Preference rows: (tokens int32 [N, P + L], roles int32 [N, P + L]) PROMPT then TARGET."""
    tokens = np.concatenate([prompts, responses], axis=1).astype(np.int32)
    roles = np.concatenate([np.full(prompts.shape, PROMPT), np.full(responses.shape, TARGET)], 1)
    return tokens, roles.astype(np.int32)


def pretrain(config: LexiconTaskConfig, language: Language, *,
             progress=print) -> tuple[dict, np.ndarray]:
    """The SFT model: tiny Llama trained on `num_pretrain_docs` documents. Returns (params, losses)."""
    rng = np.random.default_rng([config.seed, 2])
    prompts, responses = sample_documents(rng, language, config, config.num_pretrain_docs)
    docs = np.concatenate([prompts, responses], axis=1)
    n = config.num_pretrain_docs // config.pretrain_batch
    batches = docs[: n * config.pretrain_batch].reshape(n, config.pretrain_batch, -1)
    model = config.model_config()
    progress(f"pre-training the SFT model ({config.pretrain_steps} steps on "
             f"{len(docs)} documents) ...")
    params, losses = train_lm(init_params(jax.random.key(config.seed), model), model, batches,
                              lr=config.pretrain_lr, num_steps=config.pretrain_steps,
                              key=jax.random.key(config.seed + 1), pad_id=None,
                              return_losses=True)
    return params, np.asarray(losses)


def label_pairs(rng: np.random.Generator, r1: np.ndarray, r2: np.ndarray, bt_scale: float
                ) -> np.ndarray:
    """Bradley-Terry labels: bool [N], True when y1 is preferred, P = sigma(bt_scale (r1 - r2))."""
    p1 = 1.0 / (1.0 + np.exp(-bt_scale * (np.asarray(r1, np.float64) - r2)))
    return rng.random(len(p1)) < p1


def make_pairs(params: dict, config: LexiconTaskConfig, language: Language, *,
               weights: np.ndarray, num_pairs: int, stream: int) -> dict[str, np.ndarray]:
    """Preference pairs sampled from the SFT model on fresh prompts (random stream `stream`).

    Returns arrays: prompts [N, P], chosen / rejected [N, L], chosen_reward / rejected_reward [N].
    """
    rng = np.random.default_rng([config.seed, stream])
    prompts, _ = sample_documents(rng, language, config, num_pairs)
    model = config.model_config()
    k1, k2 = jax.random.split(jax.random.key(config.seed * 1000 + stream))
    y1 = np.asarray(sample_responses(params, model, jnp.asarray(prompts), k1,
                                     length=config.response_len))
    y2 = np.asarray(sample_responses(params, model, jnp.asarray(prompts), k2,
                                     length=config.response_len))
    r1, r2 = np.asarray(reward(weights, y1)), np.asarray(reward(weights, y2))
    first = label_pairs(rng, r1, r2, config.bt_scale)
    pick = lambda a, b: np.where(first[:, None] if a.ndim == 2 else first, a, b)  # noqa: E731
    return {"prompts": prompts, "chosen": pick(y1, y2), "rejected": pick(y2, y1),
            "chosen_reward": pick(r1, r2), "rejected_reward": pick(r2, r1)}


# ------------------------------------------------------------------ files of a generated task
MODEL_FILE, PAIRS_FILE, TASK_FILE = "sft_model.npz", "pairs.npz", "task.json"
GENERATE_HINT = "python experiments/pref_task.py --workdir={path}"


def generate_task(config: LexiconTaskConfig, file: Callable[[str], str], *, progress=print
                  ) -> dict:
    """Generates the whole task deterministically from `config.seed` and writes it.

    Args:
      config: the task's settings.
      file: `name -> path` inside the output folder (an `lfx.experiment.Workdir.file`).
    Returns:
      the metadata written to `task.json` (settings, sizes, reward statistics, the SFT model's
      final pre-training loss).
    """
    config.validate()
    language = make_language(config.seed)
    params, losses = pretrain(config, language, progress=progress)
    model = config.model_config()
    save_lm(file(MODEL_FILE), params, model, tokenizer(), task="lexicon", seed=config.seed)
    weights = reward_weights("lexicon")
    progress(f"sampling {config.num_pairs} preference pairs from the SFT model ...")
    pairs = make_pairs(params, config, language, weights=weights, num_pairs=config.num_pairs,
                       stream=3)
    eval_rng = np.random.default_rng([config.seed, 4])
    eval_prompts, eval_responses = sample_documents(eval_rng, language, config,
                                                    config.num_eval_prompts)
    save_npz(file(PAIRS_FILE), {**pairs, "eval_prompts": eval_prompts})
    corpus_reward = float(np.mean(reward(weights, eval_responses)))
    meta = {"task": "lexicon", "config": dataclasses.asdict(config),
            "vocab_size": tokenizer().vocab_size, "num_pairs": config.num_pairs,
            "pretrain_final_loss": float(losses[-50:].mean()),
            "corpus_reward_mean": corpus_reward,
            "chosen_reward_mean": float(pairs["chosen_reward"].mean()),
            "rejected_reward_mean": float(pairs["rejected_reward"].mean()),
            "tied_pairs": int((pairs["chosen_reward"] == pairs["rejected_reward"]).sum())}
    with open(file(TASK_FILE), "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def load_task(path: str, *, reward_name: str = "lexicon"
              ) -> tuple[dict, LlamaConfig, PreferenceData, dict]:
    """(SFT params, its LlamaConfig, the PreferenceData, task metadata) of a generated task folder.

    `reward_name` picks the evaluation reward (`REWARDS`; the pairs are always labelled by
    "lexicon", so another name evaluates on a held-out reward).
    """
    task_file = os.path.join(path, TASK_FILE)
    if not os.path.exists(task_file):
        raise FileNotFoundError(f"No preference task at {path!r} (no {TASK_FILE}); generate it "
                                f"with: {GENERATE_HINT.format(path=path)}")
    with open(task_file) as f:
        meta = json.load(f)
    params, model, _, _ = load_lm(os.path.join(path, MODEL_FILE))
    arrays = load_npz(os.path.join(path, PAIRS_FILE), "preference pairs")
    chosen_tokens, chosen_roles = rows(arrays["prompts"], arrays["chosen"])
    rejected_tokens, rejected_roles = rows(arrays["prompts"], arrays["rejected"])
    data = PreferenceData(
        chosen_tokens=jnp.asarray(chosen_tokens), chosen_roles=jnp.asarray(chosen_roles),
        rejected_tokens=jnp.asarray(rejected_tokens), rejected_roles=jnp.asarray(rejected_roles),
        eval_prompts=jnp.asarray(arrays["eval_prompts"]),
        reward_weights=jnp.asarray(reward_weights(reward_name, meta["config"]["seed"])),
        chosen_reward=jnp.asarray(arrays["chosen_reward"], jnp.float32),
        rejected_reward=jnp.asarray(arrays["rejected_reward"], jnp.float32))
    return params, model, data, meta
