"""Arithmetic word problems with a verifiable reward: the RLVR task of online RL on an LM.

RL with verifiable rewards (RLVR; Lambert et al. 2024, "TÜLU 3", arXiv:2411.15124, Sec. 6; the
GRPO recipe of Shao et al. 2024, arXiv:2402.03300) scores a sampled answer by a program instead
of a learned reward model: r(x, y) = 1 if y is the correct answer of x, else 0. Here:

* **Problems.** Templated word problems drawn with `numpy.random.default_rng([seed, stream])`,
  e.g. "tom has 2 3 apples and buys 4 5 more . how many apples does tom have ? answer :"
  (answer "6 8"). Operations: "add" (a + b), "sub" (a - b with a >= b, so answers are >= 0) and
  "mul" (a * b with a small factor b in [2, mul_max]); a, b < 10 ** digits. Every operand pair
  (unordered for "add") belongs to exactly one split: a fraction `eval_fraction` of the pairs of
  each operation is held out, so no evaluation problem's numbers occur in training.
* **Vocabulary.** `lfx.lm.WordTokenizer` words, each digit its own word ("2 3" is 23): a prompt
  is <bos>, the question and "answer :"; the model writes the answer's digits, then <eos>.
* **Verifier.** `answer_reward` (registered as "arithmetic"): r = 1 iff the response's tokens
  are exactly the answer's, lengths[b] == answer_len[b] and responses[b, :answer_len[b]] ==
  answer[b, :answer_len[b]]. Generic over tokenizers (it compares ids), so the SmolLM2 text
  variant (`smollm2_prompt_data`) is scored by the same function. "arithmetic_prefix"
  (`answer_prefix_reward`) also accepts the answer followed by anything that is not a digit.
* **SFT model.** A tiny Llama trained by cross-entropy on the answer + <eos> of fresh training
  problems (`lfx.lm.train.target_loss`) for a deliberately modest number of steps, so that its
  held-out accuracy is partial and RL has room to raise it. `task.json` records its greedy
  accuracy and its unbiased pass@k (`pass_at_k`) at temperature 1 on the evaluation prompts.
  At the defaults (seed 0; 4000 steps, ~3.5 CPU minutes with the measurement): held-out greedy
  accuracy 0.35, pass@1 0.27, pass@8 0.66 (per operation, greedy: add 0.50, sub 0.38, mul 0.14;
  on training prompts 0.50).
* **SmolLM2 variant.** The same problems as ChatML prompts (`text_prompt_arrays`); SmolLM2-135M-
  Instruct writes a bare number one token per digit, no leading space, then <|im_end|> when given
  two solved examples, and restates the problem zero-shot; its pass@1 on held-out problems is ~0.

Shapes: prompts int32 [N, P] left-padded with <pad> = 0 (P = the longest prompt, <bos> included),
targets {"answer": int32 [N, A] (right-padded with 0), "answer_len": int32 [N]}, A the most digits
an answer can have; SFT rows int32 [N, P + A + 1] with roles PAD / PROMPT / TARGET.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lfx.lm.config import LlamaConfig, tiny_config
from lfx.lm.generate import PROMPT_BUCKET, _bucket, generate, left_pad
from lfx.lm.io import load_lm, load_npz, save_lm, save_npz
from lfx.lm.llama import init_params
from lfx.lm.train import PAD, PROMPT, TARGET, HParams, TrainConfig, make_train, target_loss
from lfx.lm.word_tokenizer import WordTokenizer
from lfx.pref.prompts import PromptData, PromptSet, register_reward

OPERATIONS = ("add", "sub", "mul")
NAMES = ("tom", "ann", "sam", "mia", "ben", "eva", "max", "zoe")
ITEMS = ("apples", "pens", "cards", "coins", "books", "stamps", "shells", "marbles")
# {n} name, {i} item, {a} / {b} the operands (written digit by digit in the word vocabulary).
TEMPLATES = {
    "add": ("{n} has {a} {i} and buys {b} more . how many {i} does {n} have ?",
            "{n} has {a} {i} and finds {b} more . how many {i} does {n} have now ?",
            "there are {a} {i} in a box and {n} puts in {b} more . how many {i} are in the box ?"),
    "sub": ("{n} has {a} {i} and gives {b} away . how many {i} does {n} have left ?",
            "{n} had {a} {i} and lost {b} of them . how many {i} are left ?",
            "there are {a} {i} in a box and {n} takes out {b} . how many {i} are in the box ?"),
    "mul": ("{n} has {b} bags with {a} {i} in each bag . how many {i} does {n} have ?",
            "{n} buys {b} packs of {a} {i} . how many {i} does {n} buy ?"),
}
ANSWER_MARKER = "answer :"
DIGITS = tuple("0123456789")
REWARD_NAMES = ("arithmetic", "arithmetic_prefix")


def _template_words() -> tuple[str, ...]:
    seen = dict.fromkeys(DIGITS + NAMES + ITEMS)
    for op in OPERATIONS:
        for t in TEMPLATES[op]:
            seen.update(dict.fromkeys(w for w in t.split() if not w.startswith("{")))
    seen.update(dict.fromkeys(ANSWER_MARKER.split()))
    return tuple(seen)


WORDS = _template_words()


def tokenizer() -> WordTokenizer:
    """The task's vocabulary: 3 specials, the digits 0-9 (ids 3..12), names, items, template words."""
    return WordTokenizer(WORDS)


@dataclasses.dataclass(frozen=True)
class ArithmeticTaskConfig:
    """Everything that fixes the generated task (the seed included); stored in its metadata.

    operations: comma-separated subset of `OPERATIONS`.
    digits: operands are < 10 ** digits; mul_max: the largest factor b of "mul".
    eval_fraction: share of each operation's operand pairs held out for evaluation.
    num_sft_problems / num_train_prompts / num_eval_prompts: problems drawn for SFT rows (from the
      training pairs), for the RL training prompts (training pairs, a fresh draw) and for
      evaluation (held-out pairs).
    sft_steps: Adam steps of the SFT model, deliberately few (partial accuracy: room for RL).
    response_len: the model's room for a response (max_seq_len = bucketed prompt + response_len)
      and the `max_new_tokens` of the SFT measurements; >= the longest answer + 1 (its <eos>).
    num_samples: samples per evaluation prompt at temperature 1 for the recorded pass@k.
    """

    seed: int = 0
    operations: str = "add,sub,mul"
    digits: int = 2
    mul_max: int = 9
    eval_fraction: float = 0.2
    num_sft_problems: int = 16384
    num_train_prompts: int = 4096
    num_eval_prompts: int = 512
    sft_steps: int = 4000
    sft_batch: int = 64
    sft_lr: float = 3e-3
    dim: int = 64
    n_layers: int = 2
    hidden_dim: int = 128
    response_len: int = 8
    num_samples: int = 8

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.operations.split(",") if o.strip())

    def validate(self) -> None:
        bad = [o for o in self.ops if o not in OPERATIONS]
        if not self.ops or bad or len(set(self.ops)) != len(self.ops):
            raise ValueError(f"operations must be distinct names from {OPERATIONS}, comma-"
                             f"separated; got {self.operations!r}.")
        if not 1 <= self.digits <= 4:
            raise ValueError(f"digits must be in [1, 4], got {self.digits}.")
        if not 2 <= self.mul_max <= 9:
            raise ValueError(f"mul_max must be in [2, 9], got {self.mul_max}.")
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in (0, 1), got {self.eval_fraction}.")
        for name in ("num_sft_problems", "num_train_prompts", "num_eval_prompts", "sft_steps",
                     "sft_batch", "num_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.sft_batch > self.num_sft_problems:
            raise ValueError("sft_batch must not exceed num_sft_problems.")
        if self.response_len < self.answer_digits + 1:
            raise ValueError(f"response_len must be >= {self.answer_digits + 1} (the longest "
                             f"answer and its <eos>), got {self.response_len}.")

    @property
    def answer_digits(self) -> int:
        """A: digits of the largest possible answer."""
        top = 10 ** self.digits - 1
        largest = {"add": 2 * top, "sub": top, "mul": top * self.mul_max}
        return max(len(str(largest[o])) for o in self.ops)

    @property
    def prompt_len(self) -> int:
        """P: tokens of the longest possible prompt (<bos>, question, "answer :")."""
        n = 0
        for op in self.ops:
            b_digits = 1 if op == "mul" else self.digits
            for t in TEMPLATES[op]:
                words = t.split()
                n = max(n, len(words) + (self.digits - 1) * words.count("{a}")
                        + (b_digits - 1) * words.count("{b}"))
        return 1 + n + len(ANSWER_MARKER.split())

    def model_config(self) -> LlamaConfig:
        return tiny_config(tokenizer().vocab_size, dim=self.dim, n_layers=self.n_layers,
                           hidden_dim=self.hidden_dim,
                           max_seq_len=_bucket(self.prompt_len, PROMPT_BUCKET) + self.response_len)


# ------------------------------------------------------------------ problems
class Problems(NamedTuple):
    """N word problems as int32 [N] arrays (indices into OPERATIONS, TEMPLATES[op], NAMES, ITEMS)."""

    op: np.ndarray
    template: np.ndarray
    name: np.ndarray
    item: np.ndarray
    a: np.ndarray
    b: np.ndarray
    answer: np.ndarray

    def __len__(self) -> int:
        return len(self.op)


def apply_op(op: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The answer: a + b, a - b or a * b by op index (OPERATIONS order); int64 [N]."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    return np.select([op == 0, op == 1, op == 2], [a + b, a - b, a * b], -1)


def operand_pairs(config: ArithmeticTaskConfig, op: str) -> tuple[np.ndarray, np.ndarray]:
    """Every operand pair of `op`: (pairs int64 [M, 2], split bool [M], True = held out).

    The split is drawn per group of pairs, a group being the unordered pair for "add" (23 + 45 and
    45 + 23 fall on the same side) and the ordered pair otherwise; round(eval_fraction * groups)
    random groups (`default_rng([seed, 0, op index])`) are held out.
    """
    top = 10 ** config.digits
    a, b = np.meshgrid(np.arange(top), np.arange(top) if op != "mul"
                       else np.arange(2, config.mul_max + 1), indexing="ij")
    pairs = np.stack([a.ravel(), b.ravel()], 1).astype(np.int64)
    if op == "sub":
        pairs = pairs[pairs[:, 0] >= pairs[:, 1]]
    group = (np.sort(pairs, 1) if op == "add" else pairs) @ np.array([top, 1])
    keys, inverse = np.unique(group, return_inverse=True)
    rng = np.random.default_rng([config.seed, 0, OPERATIONS.index(op)])
    held = np.zeros(len(keys), bool)
    held[rng.permutation(len(keys))[: max(1, round(config.eval_fraction * len(keys)))]] = True
    return pairs, held[inverse.ravel()]


def sample_problems(config: ArithmeticTaskConfig, split: str, n: int, stream: int) -> Problems:
    """n problems whose operands come from `split` ("train" or "eval") pairs, drawn with
    `default_rng([seed, stream])`: operation, template, name, item and pair uniformly."""
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}.")
    rng = np.random.default_rng([config.seed, stream])
    ops = np.array([OPERATIONS.index(o) for o in config.ops])
    op = ops[rng.integers(len(ops), size=n)]
    a, b, tmpl = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    for o in ops:
        rows = np.nonzero(op == o)[0]
        pairs, held = operand_pairs(config, OPERATIONS[o])
        pool = pairs[held == (split == "eval")]
        pick = pool[rng.integers(len(pool), size=len(rows))]
        a[rows], b[rows] = pick[:, 0], pick[:, 1]
        tmpl[rows] = rng.integers(len(TEMPLATES[OPERATIONS[o]]), size=len(rows))
    name, item = rng.integers(len(NAMES), size=n), rng.integers(len(ITEMS), size=n)
    i32 = lambda x: np.asarray(x, np.int32)  # noqa: E731
    return Problems(i32(op), i32(tmpl), i32(name), i32(item), i32(a), i32(b),
                    i32(apply_op(op, a, b)))


def spaced(x: int) -> str:
    """A number in the word vocabulary: one word per digit, 23 -> "2 3"."""
    return " ".join(str(int(x)))


def questions(problems: Problems, *, style: str = "words") -> list[str]:
    """The problems' questions. style "words": the word vocabulary's text (lower case, digits
    spaced, punctuation as words); "text": plain English ("Tom has 23 apples and buys 45 more.
    How many apples does Tom have?") for a BPE tokenizer."""
    if style not in ("words", "text"):
        raise ValueError(f"style must be 'words' or 'text', got {style!r}.")
    num = spaced if style == "words" else (lambda x: str(int(x)))
    out = []
    for p in zip(*problems):
        op, t, name, item, a, b, _ = (int(v) for v in p)
        q = TEMPLATES[OPERATIONS[op]][t].format(n=NAMES[name], i=ITEMS[item], a=num(a), b=num(b))
        if style == "text":
            words = q.split()
            words = [w.capitalize() if w in NAMES or k == 0 or words[k - 1] == "." else w
                     for k, w in enumerate(words)]
            q = " ".join(words).replace(" .", ".").replace(" ?", "?")
        out.append(q)
    return out


def answer_arrays(answer_ids: list[list[int]], width: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Answers' token ids -> (answer int32 [N, A] right-padded with 0, answer_len int32 [N])."""
    lens = np.array([len(t) for t in answer_ids], np.int32)
    A = int(lens.max()) if width is None else int(width)
    if lens.max() > A:
        raise ValueError(f"An answer of {lens.max()} tokens does not fit width={A}.")
    out = np.zeros((len(answer_ids), A), np.int32)
    for i, t in enumerate(answer_ids):
        out[i, : len(t)] = t
    return out, lens


def word_prompt_arrays(problems: Problems, *, prompt_len: int | None = None,
                       answer_width: int | None = None) -> dict[str, np.ndarray]:
    """The word-vocabulary encoding: {"prompts" [N, P] left-padded with 0, "lengths" [N],
    "answer" [N, A], "answer_len" [N]}; a prompt is <bos> question "answer :"."""
    tok = tokenizer()
    seqs = [[tok.bos_id] + tok.encode(f"{q} {ANSWER_MARKER}") for q in questions(problems)]
    prompts, lengths = left_pad(seqs, tok.pad_id, prompt_len)
    answer, answer_len = answer_arrays([tok.encode(spaced(x)) for x in problems.answer],
                                       answer_width)
    return {"prompts": prompts, "lengths": lengths, "answer": answer, "answer_len": answer_len}


def prompt_set(arrays: dict[str, np.ndarray]) -> PromptSet:
    """`word_prompt_arrays`' (or `text_prompt_arrays`') dict as a PromptSet of jax arrays."""
    return PromptSet(prompts=jnp.asarray(arrays["prompts"], jnp.int32),
                     lengths=jnp.asarray(arrays["lengths"], jnp.int32),
                     targets={"answer": jnp.asarray(arrays["answer"], jnp.int32),
                              "answer_len": jnp.asarray(arrays["answer_len"], jnp.int32)})


def sft_rows(problems: Problems, *, prompt_len: int, answer_width: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """SFT rows: (tokens int32 [N, T], roles int32 [N, T]), T = prompt_len + answer_width + 1,
    each row the prompt then the answer digits and <eos> (TARGET), left-padded with PAD."""
    arr = word_prompt_arrays(problems, prompt_len=prompt_len, answer_width=answer_width)
    N, T = len(problems), prompt_len + answer_width + 1
    tokens, roles = np.zeros((N, T), np.int32), np.full((N, T), PAD, np.int32)
    eos = tokenizer().eos_id
    for i in range(N):
        p = arr["prompts"][i, prompt_len - arr["lengths"][i]:]
        t = list(arr["answer"][i, : arr["answer_len"][i]]) + [eos]
        row = np.concatenate([p, t])
        tokens[i, T - len(row):] = row
        roles[i, T - len(row):] = [PROMPT] * len(p) + [TARGET] * len(t)
    return tokens, roles


# ------------------------------------------------------------------ the verifier
def answer_reward(params, rows: PromptSet, responses: jax.Array, lengths: jax.Array,
                  model=None) -> jax.Array:
    """Exact match: r_b = [lengths_b == answer_len_b and responses[b, :answer_len_b] ==
    answer[b, :answer_len_b]], float32 [B] (the `lfx.pref.prompts` reward signature).

    Args:
      params: unused (reward_params["arithmetic"], {}).
      rows: the scored prompts; rows.targets = {"answer": int [B, A] right-padded,
        "answer_len": int [B]}.
      responses: int32 [B, K] generated ids (eos excluded, padding after lengths).
      lengths: int32 [B].
      model: unused.
    """
    del params, model
    targets = rows.targets
    return (_prefix_match(targets, responses) & (lengths == targets["answer_len"])
            ).astype(jnp.float32)


def answer_prefix_reward(params, rows: PromptSet, responses: jax.Array, lengths: jax.Array,
                         model=None) -> jax.Array:
    """Lenient match: the answer's tokens, then the end or a token that is not a digit,
    r_b = [L_b >= n_b and y[b, :n_b] == answer[b, :n_b] and (L_b == n_b or not
    digit[y[b, n_b]])], n_b = answer_len_b, L_b = lengths_b; float32 [B].

    params: reward_params["arithmetic_prefix"] = {"digit": bool [V]}, True at ids that continue
    a number (`digit_mask`).
    """
    del model
    targets = rows.targets
    n = targets["answer_len"]
    K = responses.shape[1]
    nxt = jnp.take_along_axis(responses, jnp.minimum(n, K - 1)[:, None], axis=1)[:, 0]
    ends = (lengths == n) | ~jnp.asarray(params["digit"])[nxt]
    return (_prefix_match(targets, responses) & (lengths >= n) & ends).astype(jnp.float32)


def _prefix_match(targets, responses: jax.Array) -> jax.Array:
    """bool [B]: responses[b, :n_b] == answer[b, :n_b] (False when n_b > K)."""
    answer = jnp.asarray(targets["answer"], jnp.int32)
    n = jnp.asarray(targets["answer_len"], jnp.int32)
    K, A = responses.shape[1], answer.shape[1]
    if A < K:
        answer = jnp.pad(answer, ((0, 0), (0, K - A)))
    answer = answer[:, :K]
    scored = jnp.arange(K)[None, :] < n[:, None]
    return jnp.all((responses == answer) | ~scored, axis=1) & (n <= K)


def digit_mask(tokenizer) -> np.ndarray:
    """bool [V]: ids whose text is one or more digits (a BPE's " 2" included), for
    `answer_prefix_reward`."""
    return np.array([s.strip().isdigit() for s in tokenizer.token_strings()], bool)


def _load(path: str, eval_reward: str = "") -> tuple[dict, LlamaConfig, PromptData, dict]:
    del eval_reward  # one true reward
    return load_task(path)


register_reward("arithmetic", answer_reward, load=_load)
register_reward("arithmetic_prefix", answer_prefix_reward, load=_load)


def reward_params(tokenizer) -> dict:
    """PromptData.reward_params of both verifiers for a tokenizer."""
    return {"arithmetic": {}, "arithmetic_prefix": {"digit": jnp.asarray(digit_mask(tokenizer))}}


def pass_at_k(num_correct, num_samples: int, k: int) -> jax.Array:
    """Unbiased pass@k (Chen et al. 2021, arXiv:2107.03374, Fig. 3) from n samples, c correct:

        pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n - c + 1}^{n} (1 - k / i),

    1 when n - c < k. num_correct int [...] (traced is fine); num_samples n and k static ints,
    1 <= k <= n. Returns float32 [...].
    """
    n, k = int(num_samples), int(k)
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 1 <= k <= num_samples, got k={k}, n={n}.")
    c = jnp.asarray(num_correct, jnp.float32)[..., None]
    i = jnp.arange(1, n + 1, dtype=jnp.float32)
    factors = jnp.where(i > n - c, 1.0 - k / i, 1.0)
    return jnp.where(c[..., 0] > n - k, 1.0, 1.0 - jnp.prod(factors, axis=-1)).astype(jnp.float32)


# ------------------------------------------------------------------ SFT model and its accuracy
def pretrain(config: ArithmeticTaskConfig, problems: Problems, *,
             progress=print) -> tuple[dict, np.ndarray]:
    """The SFT model: tiny Llama trained on the answers (+ <eos>) of `problems` with
    `lfx.lm.train.target_loss`, `sft_steps` Adam steps on random batches. Returns (params, losses)."""
    A = config.answer_digits
    tokens, roles = sft_rows(problems, prompt_len=config.prompt_len, answer_width=A)
    n = len(problems) // config.sft_batch
    shape = (n, config.sft_batch, tokens.shape[1])
    data = {"tokens": jnp.asarray(tokens[: n * config.sft_batch].reshape(shape)),
            "mask": jnp.asarray(roles[: n * config.sft_batch].reshape(shape))}
    model = config.model_config()

    def loss_fn(params, frozen, tokens, roles):
        del frozen
        return target_loss(params, model, tokens, roles, num_target=A + 1)

    recipe = make_train(TrainConfig(num_steps=config.sft_steps), loss_fn)
    progress(f"training the SFT model ({config.sft_steps} steps of {config.sft_batch} on "
             f"{len(problems)} problems) ...")
    state, metrics = jax.jit(recipe.train)(jax.random.key(config.seed + 1),
                                           HParams(lr=config.sft_lr),
                                           init_params(jax.random.key(config.seed), model), None,
                                           data)
    return state.trainable, np.asarray(metrics["train/loss"])


def evaluate(params: dict, config: LlamaConfig, prompts: PromptSet, key: jax.Array, *,
             max_new_tokens: int, num_samples: int = 8, reward_fn=answer_reward,
             reward_params=None, eos_id: int = 2, pad_id: int = 0) -> dict[str, float]:
    """Greedy accuracy and unbiased pass@k (k = 1, 2, 4, ..., num_samples) at temperature 1.

    Returns {"greedy_accuracy", "pass@1", ..., "pass@<num_samples>", "mean_response_len"}.
    """
    rp = {} if reward_params is None else reward_params
    out, lens = generate(params, config, prompts.prompts, prompts.lengths, key=key,
                         max_new_tokens=max_new_tokens, eos_id=eos_id, pad_id=pad_id)
    result = {"greedy_accuracy": float(jnp.mean(reward_fn(rp, prompts, out, lens)))}
    rows = jnp.tile(jnp.arange(prompts.num_prompts), num_samples)
    many = prompts.rows(rows)
    out, lens = generate(params, config, many.prompts, many.lengths, key=key,
                         max_new_tokens=max_new_tokens, temperature=1.0, eos_id=eos_id,
                         pad_id=pad_id)
    r = reward_fn(rp, many, out, lens).reshape(num_samples, -1)
    correct = r.sum(0)
    k = 1
    while k <= num_samples:
        result[f"pass@{k}"] = float(jnp.mean(pass_at_k(correct, num_samples, k)))
        k *= 2
    if f"pass@{num_samples}" not in result:
        result[f"pass@{num_samples}"] = float(jnp.mean(pass_at_k(correct, num_samples,
                                                                 num_samples)))
    result["mean_response_len"] = float(jnp.mean(lens))
    return result


# ------------------------------------------------------------------ files of a generated task
MODEL_FILE, PROMPTS_FILE, TASK_FILE = "sft_model.npz", "prompts.npz", "task.json"
GENERATE_HINT = "python experiments/rlhf_task.py --workdir={path}"
SPLITS = ("sft", "train", "eval")
PROMPT_KEYS = ("prompts", "lengths", "answer", "answer_len")


def task_problems(config: ArithmeticTaskConfig) -> dict[str, Problems]:
    """The task's problems by split: "sft" (stream 1) and "train" (stream 2) from the training
    pairs, "eval" (stream 3) from the held-out pairs."""
    return {"sft": sample_problems(config, "train", config.num_sft_problems, 1),
            "train": sample_problems(config, "train", config.num_train_prompts, 2),
            "eval": sample_problems(config, "eval", config.num_eval_prompts, 3)}


def generate_task(config: ArithmeticTaskConfig, file: Callable[[str], str], *, progress=print
                  ) -> dict:
    """Generates the whole task deterministically from `config.seed` and writes it.

    Args:
      config: the task's settings.
      file: `name -> path` inside the output folder (an `lfx.experiment.Workdir.file`).
    Returns:
      the metadata written to `task.json`: settings, sizes, the SFT model's final loss, its
      held-out greedy accuracy and pass@k at temperature 1 (`evaluate`), and timings.
    """
    config.validate()
    t0 = time.time()
    problems = task_problems(config)
    params, losses = pretrain(config, problems["sft"], progress=progress)
    model = config.model_config()
    t_train = time.time() - t0
    save_lm(file(MODEL_FILE), params, model, tokenizer(), task="arithmetic", seed=config.seed)
    P, A = config.prompt_len, config.answer_digits
    arrays = {}
    for split in ("train", "eval"):
        arrays.update({f"{split}_{k}": v for k, v in word_prompt_arrays(
            problems[split], prompt_len=P, answer_width=A).items()})
    for split in SPLITS:
        arrays.update({f"{split}_problem_{k}": v for k, v in problems[split]._asdict().items()})
    save_npz(file(PROMPTS_FILE), arrays)
    progress(f"measuring the SFT model on {config.num_eval_prompts} held-out problems ...")
    t1 = time.time()
    eval_set = prompt_set({k: arrays[f"eval_{k}"] for k in PROMPT_KEYS})
    sft_eval = evaluate(params, model, eval_set,
                        jax.random.key(config.seed + 2), max_new_tokens=config.response_len,
                        num_samples=config.num_samples)
    meta = {"task": "arithmetic", "config": dataclasses.asdict(config),
            "vocab_size": tokenizer().vocab_size, "prompt_len": P, "answer_digits": A,
            "num_train_prompts": config.num_train_prompts,
            "num_eval_prompts": config.num_eval_prompts,
            "sft_final_loss": float(losses[-50:].mean()),
            "sft_eval": sft_eval, "sft_train_seconds": round(t_train, 1),
            "sft_eval_seconds": round(time.time() - t1, 1)}
    with open(file(TASK_FILE), "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def _read(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    task_file = os.path.join(path, TASK_FILE)
    if not os.path.exists(task_file):
        raise FileNotFoundError(f"No arithmetic task at {path!r} (no {TASK_FILE}); generate it "
                                f"with: {GENERATE_HINT.format(path=path)}")
    with open(task_file) as f:
        meta = json.load(f)
    return meta, load_npz(os.path.join(path, PROMPTS_FILE), "arithmetic prompts")


def load_task(path: str) -> tuple[dict, LlamaConfig, PromptData, dict]:
    """(SFT params, its LlamaConfig, the PromptData, task metadata) of a generated task folder.

    reward_params = `reward_params(tokenizer)` (the "digit" mask only "arithmetic_prefix" reads).
    """
    meta, arrays = _read(path)
    params, model, tok, _ = load_lm(os.path.join(path, MODEL_FILE))
    sets = {split: prompt_set({k: arrays[f"{split}_{k}"] for k in PROMPT_KEYS})
            for split in ("train", "eval")}
    data = PromptData(train=sets["train"], eval=sets["eval"], reward_params=reward_params(tok))
    return params, model, data, meta


def load_problems(path: str) -> dict[str, Problems]:
    """The problems of a generated task folder by split ("sft", "train", "eval")."""
    _, arrays = _read(path)
    return {s: Problems(**{k: arrays[f"{s}_problem_{k}"] for k in Problems._fields})
            for s in SPLITS}


# ------------------------------------------------------------------ the SmolLM2 text variant
SMOLLM2_SYSTEM = "Answer with the number only."


def smollm2_prompt(tokenizer, question: str, *, shots: tuple[tuple[str, str], ...] = ()) -> str:
    """A ChatML prompt for SmolLM2-Instruct: the system line `SMOLLM2_SYSTEM`, then `shots`
    (question, answer) turns, then the question; the assistant's turn is left open."""
    messages = [{"role": "system", "content": SMOLLM2_SYSTEM}]
    for q, a in shots:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    messages.append({"role": "user", "content": question})
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True)


def text_prompt_arrays(tokenizer, problems: Problems, *, num_shots: int = 2,
                       answer_prefix: str = "", shot_seed: int = 0) -> dict[str, np.ndarray]:
    """The problems as chat prompts for a BPE tokenizer (`smollm2_prompt`), same keys as
    `word_prompt_arrays`; prompts left-padded with tokenizer.pad_id.

    The shots are `num_shots` fixed problems (the training pairs of the default config with seed
    `shot_seed`, stream 99). The answer target is the token ids of answer_prefix + "23":
    SmolLM2 writes the reply's digits one token each, with no leading space after
    "<|im_start|>assistant\\n", then <|im_end|> (its eos).
    """
    shot_cfg = ArithmeticTaskConfig(seed=shot_seed)
    shot_p = sample_problems(shot_cfg, "train", max(num_shots, 1), stream=99)
    shots = tuple(zip(questions(shot_p, style="text"), [str(int(x)) for x in shot_p.answer]))
    shots = shots[:num_shots]
    seqs = [tokenizer.encode(smollm2_prompt(tokenizer, q, shots=shots))
            for q in questions(problems, style="text")]
    prompts, lengths = left_pad(seqs, tokenizer.pad_id)
    answer, answer_len = answer_arrays([tokenizer.encode(answer_prefix + str(int(x)))
                                        for x in problems.answer])
    return {"prompts": prompts, "lengths": lengths, "answer": answer, "answer_len": answer_len}


def smollm2_prompt_data(tokenizer, train: Problems, eval: Problems, **kwargs) -> PromptData:
    """PromptData of the same problems for SmolLM2 (`text_prompt_arrays`, `kwargs` passed on),
    `reward_params(tokenizer)`; the verifier is unchanged."""
    return PromptData(train=prompt_set(text_prompt_arrays(tokenizer, train, **kwargs)),
                      eval=prompt_set(text_prompt_arrays(tokenizer, eval, **kwargs)),
                      reward_params=reward_params(tokenizer))
