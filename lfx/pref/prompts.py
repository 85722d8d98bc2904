"""Prompt sets with a reward: what the online RLHF recipe (`lfx.pref.rlhf`) samples from and scores.

A task for online RL on a language model is a set of prompts and a reward computed from the
sampled response. Both are arrays, so the rollout -> reward -> update step is one jitted function:

    PromptSet     prompts int32 [N, P] (LEFT-padded with the tokenizer's pad id), lengths int32 [N],
                  targets: a pytree of [N, ...] arrays the reward compares against (a verifier's
                  answers; {} when the reward needs none)
    PromptData    train and eval PromptSets and `reward_params`, a dict from reward name to the
                  pytree that reward reads (the lexicon reward's per-token weights [V], a reward
                  model's parameters, a verifier's table id)

and a reward function, named in `REWARDS` by the recipe's static config,

    reward(params, rows: PromptSet [B], responses int32 [B, K], lengths int32 [B], model)
        -> float32 [B]

where params = reward_params[name], rows are the scored prompts (their targets included),
responses[b, :lengths[b]] the generated tokens (eos excluded, padding after) and model the
policy's LlamaConfig (a reward model shares it; verifiers ignore it). Tasks register theirs with
`register_reward`, optionally with a loader of their generated task folder; a task whose responses
obey a token automaton (the lexicon task's fixed-length `response_fsm`) puts it in `PromptData.fsm`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from lfx.lm.generate import TokenFSM
from lfx.lm.train import PAD, PROMPT, TARGET

EOS_ID = 2  # every lfx tokenizer's eos (the closed vocabularies and SmolLM2's <|im_end|>)


@struct.dataclass
class PromptSet:
    """Prompts and what their reward compares against (see the module doc for shapes)."""

    prompts: jax.Array
    lengths: jax.Array
    targets: Any = struct.field(default_factory=dict)

    @property
    def num_prompts(self) -> int:
        return self.prompts.shape[0]

    def rows(self, idx: jax.Array) -> PromptSet:
        """The prompts (and targets) at `idx` [B]."""
        return jax.tree.map(lambda a: a[idx], self)


@struct.dataclass
class PromptData:
    """Training and evaluation prompts, the rewards' parameters, optionally the task's sampling
    constraint (`lfx.lm.generate.TokenFSM`, e.g. the lexicon task's fixed-length responses) and,
    for RTO's token rewards, the parameters of the DPO policy that defines them."""

    train: PromptSet
    eval: PromptSet
    reward_params: Any = struct.field(default_factory=dict)
    fsm: TokenFSM | None = None  # a token automaton every sampled response obeys (the task's)
    token_model: Any = None  # RTO's DPO-trained policy (`lfx.pref.rlhf`); None otherwise


@dataclasses.dataclass(frozen=True)
class Reward:
    """A task's reward (`fn`, the module doc's signature) and the loader of its task.

    load: `(task folder, eval_reward name) -> (reference params, LlamaConfig, PromptData,
      metadata)`, the generated task this reward scores (what experiments/rlhf.py loads).
    token_fn: None, or the reward's per-token credit (`fn`'s signature, float32 [B, K], each row
      summing to `fn`'s value): what fine-grained (segment-level) rewards are made of.
    """

    fn: Callable[..., jax.Array]
    load: Callable[..., tuple] | None = None
    token_fn: Callable[..., jax.Array] | None = None


REWARDS: dict[str, Reward] = {}


def register_reward(name: str, fn: Callable[..., jax.Array], *,
                    load: Callable[..., tuple] | None = None,
                    token_fn: Callable[..., jax.Array] | None = None) -> None:
    """Makes `name` a reward the recipe's config can name (a task module calls this on import)."""
    REWARDS[name] = Reward(fn, load, token_fn)


def get_reward(name: str) -> Reward:
    """The registered reward `name`; ValueError listing the known names otherwise."""
    _import_tasks()
    if name not in REWARDS:
        raise ValueError(f"Unknown reward {name!r}; known rewards: {', '.join(sorted(REWARDS))}.")
    return REWARDS[name]


def _import_tasks() -> None:
    """Imports the task modules that register rewards (kept lazy: tasks import this module)."""
    import importlib

    for module in TASK_MODULES:
        importlib.import_module(module)


TASK_MODULES = ["lfx.pref.lexicon", "lfx.pref.arithmetic", "lfx.pref.code_task",
                "lfx.pref.reward_model"]


def response_rows(prompts: PromptSet, responses: jax.Array, lengths: jax.Array
                  ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(tokens [B, P + K], roles [B, P + K], mask [B, K]) of prompt + response rows: the response,
    then eos where it stopped before K (the policy's decision to stop is scored), then padding
    (roles PAD / PROMPT / TARGET as `lfx.lm.encode_prompt_target`)."""
    P, K = prompts.prompts.shape[1], responses.shape[1]
    col = jnp.arange(K)[None, :]
    n = lengths[:, None]
    y = jnp.where(col < n, responses, jnp.where(col == n, EOS_ID, 0)).astype(jnp.int32)
    mask = col < jnp.minimum(n + 1, K)
    prompt_roles = jnp.where(jnp.arange(P)[None, :] >= P - prompts.lengths[:, None], PROMPT, PAD)
    tokens = jnp.concatenate([prompts.prompts, y], axis=1)
    roles = jnp.concatenate([prompt_roles, jnp.where(mask, TARGET, PAD)], axis=1)
    return tokens, roles.astype(jnp.int32), mask.astype(jnp.float32)


def check_prompt_data(data: PromptData, *, response_len: int, max_seq_len: int,
                      rewards: tuple[str, ...] = (), name: str = "PromptData") -> None:
    """Refuses (ValueError) prompt sets whose shapes cannot run, or that lack the parameters of
    the `rewards` they are scored by, before anything compiles."""
    for reward in rewards:
        if not isinstance(data.reward_params, dict) or reward not in data.reward_params:
            have = list(data.reward_params) if isinstance(data.reward_params, dict) else \
                type(data.reward_params).__name__
            raise ValueError(f"{name}.reward_params has no entry for reward {reward!r} (it "
                             f"holds {have}); the task's loader puts it there.")
    for split in ("train", "eval"):
        s = getattr(data, split)
        if s.prompts.ndim != 2 or tuple(s.lengths.shape) != s.prompts.shape[:1]:
            raise ValueError(f"{name}.{split}: prompts must be [N, P] and lengths [N]; got "
                             f"{tuple(s.prompts.shape)} and {tuple(s.lengths.shape)}.")
        for path, leaf in jax.tree_util.tree_leaves_with_path(s.targets):
            if leaf.shape[:1] != s.prompts.shape[:1]:
                raise ValueError(f"{name}.{split}.targets{jax.tree_util.keystr(path)} must have "
                                 f"{s.prompts.shape[0]} rows (one per prompt), got "
                                 f"{tuple(leaf.shape)}.")
        if not isinstance(s.lengths, jax.core.Tracer) and int(jnp.min(s.lengths)) < 1:
            raise ValueError(f"{name}.{split}: every prompt needs >= 1 token.")
    from lfx.lm.generate import PROMPT_BUCKET, _bucket

    P = max(data.train.prompts.shape[1], data.eval.prompts.shape[1])
    if _bucket(P, PROMPT_BUCKET) + response_len > max_seq_len:
        raise ValueError(f"Prompts of {P} tokens (bucketed to {_bucket(P, PROMPT_BUCKET)}) + "
                         f"response_len={response_len} exceed the model's max_seq_len="
                         f"{max_seq_len}; shorten the responses.")
