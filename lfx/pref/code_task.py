"""A tiny code-generation task with an execution reward: write the body of f(x) from examples.

The setting of PF-PPO ("Policy Filtration in RLHF to Fine-Tune LLM for Code Generation", Shen et
al. 2024, arXiv:2409.06957): the policy writes a program, the reward is the result of running
hidden unit tests on it (`lfx.pref.sandbox`), small enough for a ~100k-parameter Llama on a CPU.

* **Problems.** A target function from a family (`FAMILIES`: `return x + c`, `x * c`, `x - c`,
  `c - x`, `x % c`, `x // c`, and the two-operation `x * a + b`, `( x + a ) * b`), constants in
  1..9 (2..9 for *, %, //), shown by `num_shown` input/output examples with x in [0, 20) and checked
  by `num_hidden` hidden tests (`assert f(x) == y`, the shown inputs and more, x in [0, 30)). The
  examples are resampled until they pin the function down: every candidate (family, constants)
  that agrees with them also agrees on every hidden test. Drawn from `numpy.random.default_rng`.
* **Text.** Words are tokens (`lfx.lm.WordTokenizer`, `VOCAB`): Python tokens and the digits
  "0".."9" as separate words; consecutive digit words form one number ("1 2" is 12), so numbers of
  any size have 10 digit ids. The prompt of f(x) = x + 2 is

      <bos> f ( 3 ) = 5 ; f ( 1 2 ) = 1 4 ; f ( 7 ) = 9 ; def f ( x ) :

  (`problem.prompt` is its text "f ( 3 ) = 5 ; f ( 12 ) = 14 ; ...") and the reference response is
  the body "return x + 2" then <eos>. `detokenize` joins words with spaces and digits without, so
  a response is Python: `program(body) = "def f(x):\n    " + body`.
* **Reward.** r = 1 when every hidden test passes ("code", PF-PPO's pass/fail reward) or the
  fraction of hidden tests passed ("code_fraction"), computed by running the program in the sandbox
  from inside jit through `jax.pure_callback` (see `code_reward`).

Shapes: prompts int32 [N, P] left-padded with 0, targets {"problem": int32 [N]} (a row of the
registered tests table), reward_params {"code": {"task_id": int32 []}} (and the same under
"code_fraction"); responses int32 [B, K].
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import json
import threading
import zlib
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lfx.lm.generate import left_pad
from lfx.lm.word_tokenizer import WordTokenizer
from lfx.pref.prompts import PromptData, PromptSet, register_reward
from lfx.pref.sandbox import run_batch

DIGITS = tuple("0123456789")
VOCAB = ("def", "f", "(", ")", ":", "=", ";", "x", "return", "+", "-", "*", "//", "%") + DIGITS

_ADD, _MUL = tuple(range(1, 10)), tuple(range(2, 10))


@dataclasses.dataclass(frozen=True)
class Family:
    """A target-function family: body `template` with constants from `consts`, and its values."""

    template: str
    consts: tuple[tuple[int, ...], ...]
    fn: Callable[..., np.ndarray]


FAMILIES: dict[str, Family] = {
    "add": Family("return x + {0}", (_ADD,), lambda x, c: x + c),
    "mul": Family("return x * {0}", (_MUL,), lambda x, c: x * c),
    "sub": Family("return x - {0}", (_ADD,), lambda x, c: x - c),
    "rsub": Family("return {0} - x", (_ADD,), lambda x, c: c - x),
    "mod": Family("return x % {0}", (_MUL,), lambda x, c: x % c),
    "div": Family("return x // {0}", (_MUL,), lambda x, c: x // c),
    "mul_add": Family("return x * {0} + {1}", (_MUL, _ADD), lambda x, a, b: x * a + b),
    "add_mul": Family("return ( x + {0} ) * {1}", (_ADD, _MUL), lambda x, a, b: (x + a) * b),
}
SINGLE_OP = ("add", "mul", "sub", "rsub", "mod", "div")
TWO_OP = ("mul_add", "add_mul")
SHOWN_RANGE, HIDDEN_RANGE = 20, 30


def tokenizer() -> WordTokenizer:
    """The task's vocabulary (3 specials, then `VOCAB`: 27 ids)."""
    return WordTokenizer(VOCAB)


def encode(text: str) -> list[int]:
    """Token ids of `text` (words separated by spaces; a number is split into its digits)."""
    words = [c for w in text.split() for c in (list(w) if w.isdigit() else [w])]
    return tokenizer().encode(" ".join(words))


def detokenize(ids) -> str:
    """Text of token ids: words joined by spaces, consecutive digits joined into one number;
    special ids (pad, bos, eos) are dropped. `detokenize(encode(s)) == s` for canonical text."""
    words = tokenizer().decode(ids).split()
    out: list[str] = []
    for w in words:
        if out and w.isdigit() and out[-1].isdigit():
            out[-1] += w
        else:
            out.append(w)
    return " ".join(out)


def program(body: str) -> str:
    """The Python source of f with the response `body` (one line)."""
    return f"def f(x):\n    {body}\n"


def _number(n: int) -> str:
    return f"- {-n}" if n < 0 else str(n)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One problem: the shown examples, the hidden tests and the reference body."""

    family: str
    consts: tuple[int, ...]
    shown: tuple[tuple[int, int], ...]
    hidden: tuple[tuple[int, int], ...]

    @property
    def body(self) -> str:
        return FAMILIES[self.family].template.format(*self.consts)

    @property
    def prompt(self) -> str:
        examples = " ; ".join(f"f ( {x} ) = {_number(y)}" for x, y in self.shown)
        return f"{examples} ; def f ( x ) :"

    @property
    def tests(self) -> tuple[str, ...]:
        return tuple(f"assert f({x}) == {y}" for x, y in self.hidden)


@functools.cache
def _candidates(families: tuple[str, ...]) -> tuple[list[tuple[str, tuple[int, ...]]], np.ndarray]:
    """Every (family, constants) and its values on [0, HIDDEN_RANGE): int64 [C, HIDDEN_RANGE]."""
    xs = np.arange(HIDDEN_RANGE, dtype=np.int64)
    names, values = [], []
    for name in families:
        fam = FAMILIES[name]
        for consts in itertools.product(*fam.consts):
            names.append((name, consts))
            values.append(fam.fn(xs, *consts))
    return names, np.stack(values)


def _pairs(xs: np.ndarray, ys: np.ndarray) -> tuple[tuple[int, int], ...]:
    return tuple((int(x), int(ys[x])) for x in xs)


def sample_problems(rng: np.random.Generator, n: int, *, families: Sequence[str] = SINGLE_OP,
                    num_shown: int = 3, num_hidden: int = 8) -> list[Problem]:
    """n problems whose examples pin the function down on the hidden tests (see the module doc)."""
    families = tuple(families)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"Unknown families {unknown}; choose from {sorted(FAMILIES)}.")
    if not 1 <= num_shown <= min(num_hidden, SHOWN_RANGE) or num_hidden > HIDDEN_RANGE:
        raise ValueError(f"Need 1 <= num_shown <= num_hidden <= {HIDDEN_RANGE} (and num_shown <= "
                         f"{SHOWN_RANGE}); got num_shown={num_shown}, num_hidden={num_hidden}.")
    names, values = _candidates(families)
    problems = []
    while len(problems) < n:
        c = int(rng.integers(len(names)))
        for _ in range(100):
            shown = rng.choice(SHOWN_RANGE, size=num_shown, replace=False)
            rest = np.setdiff1d(np.arange(HIDDEN_RANGE), shown)
            hidden = np.concatenate([shown, rng.choice(rest, num_hidden - num_shown, replace=False)])
            agree = (values[:, shown] == values[c, shown]).all(1)
            if (values[agree][:, hidden] == values[c, hidden]).all():
                break
        else:
            continue  # this function is not identifiable from few examples: draw another
        problems.append(Problem(names[c][0], names[c][1], _pairs(shown, values[c]),
                                _pairs(np.sort(hidden), values[c])))
    return problems


# ------------------------------------------------------------------ the tests table behind the reward
@dataclasses.dataclass(frozen=True)
class HiddenTests:
    """Host-side hidden tests of a task: `tests[i]` are the asserts of problem i."""

    tests: tuple[tuple[str, ...], ...]
    timeout_s: float = 2.0
    memory_mb: int = 256


TABLES: dict[int, HiddenTests] = {}
_CACHE: collections.OrderedDict = collections.OrderedDict()
_CACHE_SIZE = 1 << 16
_LOCK = threading.Lock()


def register_tests(tests: Sequence[Sequence[str]], *, task_id: int | None = None,
                   timeout_s: float = 2.0, memory_mb: int = 256) -> int:
    """Stores a tests table under `task_id` (default: a hash of the table, stable across runs) and
    returns the id, the `reward_params["task_id"]` of the code reward. Re-registering the same
    table is a no-op; another table under a taken id raises ValueError."""
    table = HiddenTests(tuple(tuple(t) for t in tests), float(timeout_s), int(memory_mb))
    if not table.tests or not all(table.tests):
        raise ValueError("register_tests needs a non-empty list of non-empty test lists.")
    if task_id is None:
        task_id = zlib.crc32(json.dumps(dataclasses.asdict(table)).encode()) & 0x7FFFFFFF
    task_id = int(task_id)
    if not 0 <= task_id < 2**31:
        raise ValueError(f"task_id must be in [0, 2**31), got {task_id}.")
    with _LOCK:
        if TABLES.get(task_id, table) != table:
            raise ValueError(f"task_id {task_id} already holds another tests table.")
        TABLES[task_id] = table
    return task_id


def clear_cache() -> None:
    """Forgets the memoised sandbox results (see `score_responses`)."""
    with _LOCK:
        _CACHE.clear()


def score_responses(task_id: int, problems, responses, lengths, *, fraction: bool) -> np.ndarray:
    """The host side of `code_reward`: float32 [B] for numpy problems [B], responses [B, K],
    lengths [B]. Identical (program, tests) pairs are run once and memoised (except timeouts)."""
    task_id = int(task_id)
    if task_id not in TABLES:
        raise ValueError(f"No tests table registered under task_id={task_id}; known: "
                         f"{sorted(TABLES)} (make_prompt_data or register_tests registers one).")
    table = TABLES[task_id]
    problems, responses = np.asarray(problems), np.asarray(responses)
    lengths = np.clip(np.asarray(lengths), 0, responses.shape[1])
    if problems.min(initial=0) < 0 or problems.max(initial=0) >= len(table.tests):
        raise ValueError(f"Problem indices must be in [0, {len(table.tests)}), got "
                         f"[{problems.min()}, {problems.max()}].")
    keys = [(program(detokenize(responses[b, :lengths[b]])), table.tests[int(problems[b])],
             table.timeout_s, table.memory_mb) for b in range(len(problems))]
    with _LOCK:
        known = {k: _CACHE[k] for k in keys if k in _CACHE}
    todo = list(dict.fromkeys(k for k in keys if k not in known))
    results = run_batch([k[0] for k in todo], [k[1] for k in todo], timeout_s=table.timeout_s,
                        memory_mb=table.memory_mb)
    with _LOCK:
        for k, r in zip(todo, results):
            known[k] = (float(r.passed), r.fraction)
            if r.status != "timeout":
                _CACHE[k] = known[k]
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return np.array([known[k][1 if fraction else 0] for k in keys], np.float32)


def code_reward(params, rows, responses, lengths, model=None, *, fraction: bool = False):
    """r [B] float32: 1 if the response passes every hidden test of its problem, else 0 (or, with
    `fraction`, the fraction of hidden tests passed).

    params {"task_id": int32 []}, rows a `PromptSet` whose targets are {"problem": int32 [B]},
    responses int32 [B, K], lengths int32 [B] (the `lfx.pref.prompts` signature; `model` unused).
    Only arrays cross the jit boundary: the tests live host-side in `TABLES[task_id]`, and
    `jax.pure_callback` (vmap_method="sequential": under vmap, one host call per mapped row)
    decodes each response, runs it in the sandbox (`run_batch`, in parallel) and returns the
    rewards. The rollout waits for the host call.
    """
    del model
    problems = jnp.asarray(rows.targets["problem"], jnp.int32)
    responses = jnp.asarray(responses, jnp.int32)
    lengths = jnp.asarray(lengths, jnp.int32)
    if responses.ndim != 2 or problems.shape != responses.shape[:1] or \
            lengths.shape != responses.shape[:1]:
        raise ValueError(f"code_reward needs responses [B, K], lengths [B] and targets['problem'] "
                         f"[B]; got {responses.shape}, {lengths.shape} and {problems.shape}.")
    task_id = jnp.asarray(params["task_id"], jnp.int32)
    if task_id.shape != ():
        raise ValueError(f"params['task_id'] must be a scalar, got shape {task_id.shape}.")
    if not isinstance(task_id, jax.core.Tracer) and int(task_id) not in TABLES:
        raise ValueError(f"No tests table registered under task_id={int(task_id)}; known: "
                         f"{sorted(TABLES)}.")
    host = functools.partial(score_responses, fraction=fraction)
    return jax.pure_callback(host, jax.ShapeDtypeStruct(responses.shape[:1], jnp.float32),
                             task_id, problems, responses, lengths, vmap_method="sequential")


code_fraction_reward = functools.partial(code_reward, fraction=True)
register_reward("code", code_reward)
register_reward("code_fraction", code_fraction_reward)


# ------------------------------------------------------------------ prompt data for the recipe
def encode_prompts(problems: Sequence[Problem], length: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(prompts int32 [N, P] left-padded with 0, lengths int32 [N]): <bos> then the prompt."""
    tok = tokenizer()
    return left_pad([[tok.bos_id, *encode(p.prompt)] for p in problems], tok.pad_id, length)


def encode_responses(bodies: Sequence[str], length: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(responses int32 [N, K] right-padded with 0, lengths int32 [N]) of body texts (no eos)."""
    ids = [encode(b) for b in bodies]
    K = max(len(i) for i in ids) if length is None else int(length)
    if max(len(i) for i in ids) > K:
        raise ValueError(f"A response of {max(len(i) for i in ids)} tokens does not fit length={K}.")
    out = np.zeros((len(ids), K), np.int32)
    for b, i in enumerate(ids):
        out[b, :len(i)] = i
    return out, np.array([len(i) for i in ids], np.int32)


def make_prompt_data(seed: int, num_train: int, num_eval: int, *,
                     families: Sequence[str] = SINGLE_OP, num_shown: int = 3, num_hidden: int = 8,
                     timeout_s: float = 2.0) -> tuple[PromptData, dict]:
    """Train and eval prompts of the code task, deterministic in `seed`, and their tests table.

    Eval prompts are distinct from every train prompt (the same function may recur with other
    examples). Registers the tests (train rows first, then eval) and puts its id in reward_params.
    Returns (PromptData, meta): meta has "task", "task_id", "seed", "families", "vocab_size",
    "num_train", "num_eval", "prompt_len", "max_response_len" (reference body + eos) and
    "problems" (the list of `Problem`, train then eval; not JSON).
    """
    if num_train < 1 or num_eval < 1:
        raise ValueError(f"num_train and num_eval must be >= 1, got {num_train}, {num_eval}.")
    kw = dict(families=families, num_shown=num_shown, num_hidden=num_hidden)
    train = sample_problems(np.random.default_rng([seed, 0]), num_train, **kw)
    seen = {p.prompt for p in train}
    rng, evals = np.random.default_rng([seed, 1]), []
    for _ in range(100):
        evals += [p for p in sample_problems(rng, num_eval, **kw) if p.prompt not in seen]
        seen |= {p.prompt for p in evals}
        if len(evals) >= num_eval:
            break
    else:
        raise ValueError(f"Could not draw {num_eval} eval prompts distinct from the train ones.")
    evals = evals[:num_eval]
    problems = train + evals
    task_id = register_tests([p.tests for p in problems], timeout_s=timeout_s)
    P = max(len(encode(p.prompt)) + 1 for p in problems)

    def prompt_set(ps, offset):
        ids, lengths = encode_prompts(ps, P)
        return PromptSet(prompts=jnp.asarray(ids), lengths=jnp.asarray(lengths),
                         targets={"problem": jnp.arange(offset, offset + len(ps), dtype=jnp.int32)})

    data = PromptData(train=prompt_set(train, 0), eval=prompt_set(evals, num_train),
                      reward_params={name: {"task_id": jnp.int32(task_id)}
                                     for name in ("code", "code_fraction")})
    meta = {"task": "code", "task_id": task_id, "seed": seed, "families": list(families),
            "vocab_size": tokenizer().vocab_size, "num_train": num_train, "num_eval": num_eval,
            "prompt_len": P, "max_response_len": max(len(encode(p.body)) for p in problems) + 1,
            "problems": problems}
    return data, meta
