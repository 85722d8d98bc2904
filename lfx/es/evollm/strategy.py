"""EvoLLM: a language model as an evolution strategy's recombination operator, in ask/tell form.

Lange, Tian, Tang (2024), "Large Language Models As Evolution Strategies", arXiv:2402.18381.
Per generation g (fitness maximised):

  ask:  x_i = m_g + sigma_g z_i, z_i ~ N(0, I), i = 1..N (x_1 = m_g when `evaluate_mean`)   [N, D]
  tell: archive <- context selection over (archive, population)    ("best": top-L ever seen;
                                                                    "recent": best of last L gens)
        order the L members (least-to-most = worst first), discretise x and fitness to integers,
        for each block b of k coordinates: prompt_b = lines "x_b:f" -> LM -> proposal m_b
        m_{g+1} = concat_b(m_b), falling back per coordinate to the best solution so far when a
        proposal is out of range (|x| > x_bound) or unparsable (counted in the metrics);
        sigma_{g+1} = max(sigma_g * sigma_decay, sigma_min).

Where it runs: `ask`, the archive update, context selection, ordering, discretisation and the mean
update are jnp code inside jit / `lax.scan`. The LM step (text formatting, tokenisation, one batched
`generate` call for all blocks -- and, under `vmap`, for all seeds -- then decoding and parsing) runs
on the HOST via `jax.pure_callback` (vmap_method="broadcast_all"); `generate` itself is jitted
(prefill + KV-cache decode). Decoding is constrained by a TokenFSM for the number grammar (see
`grammar`), so every finished row parses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from lfx.es.evollm import encoding, grammar, prompt

SORT_ORDERS = ("least_to_most", "most_to_least", "random")
CONTEXT_SELECTIONS = ("best", "recent")


@dataclasses.dataclass(frozen=True)
class EvoLLMConfig:
    """Static EvoLLM settings; every knob the paper ablates is a field."""

    population_size: int = 8
    num_dims: int = 2
    block_size: int = 2  # k coordinates per LM query; the last block overlaps when k does not divide D
    context_length: int = 8  # L members in the prompt
    context_selection: str = "best"  # "best" | "recent"
    sort_order: str = "least_to_most"  # "least_to_most" | "most_to_least" | "random"
    x_decimals: int = 2  # resolution: x -> round(x * 10**x_decimals)
    fitness_digits: int = 3  # fitness -> integers in [0, 10**fitness_digits - 1]
    x_bound: float = 5.0  # search box half-width; proposals outside fall back
    sigma: float = 0.5  # sampling std around the proposed mean
    sigma_decay: float = 1.0
    sigma_min: float = 0.0
    evaluate_mean: bool = True  # population member 0 is the proposed mean itself
    temperature: float = 0.0  # LM sampling temperature (0 = greedy)
    header: str = ""  # text before the context lines

    def validate(self) -> None:
        if self.population_size < 1 or self.num_dims < 1:
            raise ValueError("population_size and num_dims must be >= 1.")
        if self.block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {self.block_size}.")
        if self.context_length < 1:
            raise ValueError(f"context_length must be >= 1, got {self.context_length}.")
        if self.sort_order not in SORT_ORDERS:
            raise ValueError(f"sort_order must be one of {SORT_ORDERS}, got {self.sort_order!r}.")
        if self.context_selection not in CONTEXT_SELECTIONS:
            raise ValueError(
                f"context_selection must be one of {CONTEXT_SELECTIONS}, got {self.context_selection!r}."
            )
        if self.x_decimals < 0 or self.fitness_digits < 1:
            raise ValueError("x_decimals must be >= 0 and fitness_digits >= 1.")
        if self.x_bound <= 0 or self.sigma < 0:
            raise ValueError("x_bound must be > 0 and sigma >= 0.")


@struct.dataclass
class EvoLLMParams:
    sigma_init: jax.Array
    sigma_decay: jax.Array
    sigma_min: jax.Array


@struct.dataclass
class EvoLLMState:
    mean: jax.Array  # [D]
    sigma: jax.Array  # []
    archive_x: jax.Array  # [L, D]
    archive_f: jax.Array  # [L], -inf = empty slot
    best_solution: jax.Array  # [D]
    best_fitness: jax.Array  # []
    generation_counter: jax.Array  # []


@dataclasses.dataclass(frozen=True, eq=False)
class LanguageModel:
    """What EvoLLM needs from an LM: lfx.lm's `generate` contract plus its weights and tokenizer."""

    params: Any
    config: Any
    tokenizer: Any
    generate: Callable
    token_fsm: Callable | None = None  # TokenFSM constructor; defaults to lfx.lm.TokenFSM


def _token_fsm_cls(lm: LanguageModel):
    if lm.token_fsm is not None:
        return lm.token_fsm
    try:
        from lfx.lm import TokenFSM  # noqa: PLC0415 (optional until lfx.lm lands)
    except ImportError:
        from lfx.es.evollm.toy_lm import TokenFSM  # noqa: PLC0415
    return TokenFSM


class EvoLLM:
    """EvoLLM with the evosax-shaped API of `lfx.es.Strategy` (init / ask / tell, fitness maximised)."""

    def __init__(self, config: EvoLLMConfig, lm: LanguageModel):
        config.validate()
        self.config = config
        self.lm = lm
        self.population_size = config.population_size
        self.num_dims = config.num_dims
        d = config.num_dims
        self.k = min(config.block_size, d)
        starts = list(range(0, d - self.k + 1, self.k))
        if starts[-1] + self.k < d:
            starts.append(d - self.k)
        self.block_starts = starts
        self.num_blocks = len(starts)
        self.block_index = np.array([[s + j for j in range(self.k)] for s in starts], np.int32)
        # Each dim is owned by the first block covering it.
        owner = {}
        for b, s in enumerate(starts):
            for j in range(self.k):
                owner.setdefault(s + j, (b, j))
        self.owner_block = np.array([owner[i][0] for i in range(d)], np.int32)
        self.owner_pos = np.array([owner[i][1] for i in range(d)], np.int32)
        self.max_int = encoding.max_abs_int(config.x_bound, config.x_decimals)
        self.max_digits = encoding.num_int_digits(config.x_bound, config.x_decimals)
        self.max_new_tokens = self.k * (self.max_digits + 2)
        tok = lm.tokenizer
        trans, start, final = grammar.build_token_transitions(
            tok.token_strings(), self.k, self.max_digits, ":", absorbing_ids=(tok.eos_id, tok.pad_id)
        )
        self.fsm = _token_fsm_cls(lm)(jnp.asarray(trans), int(start), jnp.asarray(final))
        self.host_calls = 0

    # ----------------------------------------------------------------------------------- jnp part
    @property
    def default_params(self) -> EvoLLMParams:
        c = self.config
        return EvoLLMParams(
            jnp.asarray(c.sigma, jnp.float32),
            jnp.asarray(c.sigma_decay, jnp.float32),
            jnp.asarray(c.sigma_min, jnp.float32),
        )

    def init(self, key: jax.Array, mean: jax.Array, params: EvoLLMParams) -> EvoLLMState:
        c = self.config
        mean = jnp.asarray(mean, jnp.float32)
        return EvoLLMState(
            mean=mean,
            sigma=params.sigma_init,
            archive_x=jnp.zeros((c.context_length, c.num_dims), jnp.float32),
            archive_f=jnp.full((c.context_length,), -jnp.inf, jnp.float32),
            best_solution=mean,
            best_fitness=jnp.asarray(-jnp.inf, jnp.float32),
            generation_counter=jnp.asarray(0, jnp.int32),
        )

    def ask(self, key: jax.Array, state: EvoLLMState, params: EvoLLMParams):
        z = jax.random.normal(key, (self.population_size, self.num_dims))
        population = state.mean + state.sigma * z
        if self.config.evaluate_mean:
            population = population.at[0].set(state.mean)
        return population, state

    def update_archive(self, state: EvoLLMState, population, fitness) -> EvoLLMState:
        """Context selection: top-L distinct points ever seen ("best") or best of each of the last L
        generations ("recent"); also tracks the best solution so far."""
        fitness = jnp.where(jnp.isnan(fitness), -jnp.inf, fitness)
        L = self.config.context_length
        if self.config.context_selection == "best":
            # A re-evaluated point (e.g. an unchanged mean) must not fill the context with copies.
            dup = jnp.any(
                jnp.all(population[:, None, :] == state.archive_x[None], axis=-1)
                & jnp.isfinite(state.archive_f)[None],
                axis=1,
            )
            xs = jnp.concatenate([state.archive_x, population])
            fs = jnp.concatenate([state.archive_f, jnp.where(dup, -jnp.inf, fitness)])
            top_f, idx = jax.lax.top_k(fs, L)
            archive_x, archive_f = xs[idx], top_f
        else:
            i = jnp.argmax(fitness)
            archive_x = jnp.roll(state.archive_x, -1, axis=0).at[-1].set(population[i])
            archive_f = jnp.roll(state.archive_f, -1).at[-1].set(fitness[i])
        i = jnp.argmax(fitness)
        better = fitness[i] > state.best_fitness
        return state.replace(
            archive_x=archive_x,
            archive_f=archive_f,
            best_solution=jnp.where(better, population[i], state.best_solution),
            best_fitness=jnp.where(better, fitness[i], state.best_fitness),
        )

    def context(self, key: jax.Array, state: EvoLLMState):
        """Ordered, discretised context: (x_int [nb, L, k], f_int [L], valid [L]); invalid = empty."""
        c = self.config
        f = state.archive_f
        valid = jnp.isfinite(f)
        if c.sort_order == "least_to_most":
            order = jnp.argsort(jnp.where(valid, f, -jnp.inf))  # empties first, then worst..best
        elif c.sort_order == "most_to_least":
            order = jnp.argsort(-jnp.where(valid, f, jnp.inf))  # empties first, then best..worst
        else:
            order = jax.random.permutation(key, f.shape[0])
        x, f, valid = state.archive_x[order], f[order], valid[order]
        f_fill = jnp.where(valid, f, jnp.min(jnp.where(valid, f, jnp.inf)))
        f_int = encoding.discretise_fitness(f_fill, c.fitness_digits)
        x_int = encoding.discretise_x(x, c.x_decimals, c.x_bound)  # [L, D]
        x_int_blocks = jnp.transpose(x_int[:, self.block_index], (1, 0, 2))  # [nb, L, k]
        return x_int_blocks, f_int, valid

    def tell(self, key: jax.Array, population, fitness, state: EvoLLMState, params: EvoLLMParams):
        key_ctx, key_lm = jax.random.split(key)
        state = self.update_archive(state, population, fitness)
        x_int, f_int, valid = self.context(key_ctx, state)
        seed = jax.random.randint(key_lm, (), 0, jnp.iinfo(jnp.int32).max)
        out_shape = (
            jax.ShapeDtypeStruct((self.num_blocks, self.k), jnp.int32),
            jax.ShapeDtypeStruct((self.num_blocks,), jnp.bool_),
        )
        prop_int, parsed = jax.pure_callback(
            self._host_propose, out_shape, x_int, f_int, valid, seed, vmap_method="broadcast_all"
        )
        in_range = (jnp.abs(prop_int) <= self.max_int) & parsed[:, None]  # [nb, k]
        prop = encoding.undiscretise_x(prop_int, self.config.x_decimals)
        fallback = state.best_solution[self.block_index]  # [nb, k]
        blocks = jnp.where(in_range, prop, fallback)
        mean = blocks[self.owner_block, self.owner_pos]
        sigma = jnp.maximum(state.sigma * params.sigma_decay, params.sigma_min)
        state = state.replace(
            mean=mean, sigma=sigma, generation_counter=state.generation_counter + 1
        )
        metrics = {
            "best_fitness": state.best_fitness,
            "sigma": state.sigma,
            "evollm/out_of_range": jnp.sum(parsed[:, None] & ~in_range),
            "evollm/parse_fail": jnp.sum(~parsed),
            "evollm/fallback_coords": jnp.sum(~in_range),
        }
        return state, metrics

    def best(self, state: EvoLLMState):
        return state.best_solution, state.best_fitness

    def mean(self, state: EvoLLMState):
        return state.mean

    # ---------------------------------------------------------------------------------- host part
    def prompts(self, x_int, f_int, valid) -> list[str]:
        """Host: [nb, L, k], [L], [L] -> one prompt text per block (invalid members omitted)."""
        x_int, f_int, valid = np.asarray(x_int), np.asarray(f_int), np.asarray(valid, bool)
        return [
            prompt.block_prompt(x_int[b][valid], f_int[valid], self.config.header)
            for b in range(x_int.shape[0])
        ]

    def propose_texts(self, texts: list[str], seed: int) -> list[str]:
        """Host: one constrained, batched `generate` call for all prompts -> raw continuation texts."""
        tok = self.lm.tokenizer
        ids, lengths = prompt.left_pad([tok.encode(t) for t in texts], tok.pad_id)
        out, out_len = self.lm.generate(
            self.lm.params,
            self.lm.config,
            jnp.asarray(ids, jnp.int32),
            jnp.asarray(lengths, jnp.int32),
            key=jax.random.key(seed),
            max_new_tokens=self.max_new_tokens,
            temperature=self.config.temperature,
            fsm=self.fsm,
            eos_id=tok.eos_id,
            pad_id=tok.pad_id,
        )
        self.host_calls += 1
        out, out_len = np.asarray(out), np.asarray(out_len)
        return [tok.decode(out[i, : out_len[i]].tolist()) for i in range(len(texts))]

    def parse(self, text: str):
        """Host: continuation text -> (k ints, True) or (zeros, False) unless it ends with ':'."""
        head, sep, _ = text.partition(":")
        values = encoding.parse_numbers(head, self.k) if sep else None
        return (values, True) if values is not None else ([0] * self.k, False)

    def _host_propose(self, x_int, f_int, valid, seed):
        x_int, f_int, valid, seed = map(np.asarray, (x_int, f_int, valid, seed))
        batch_shape = f_int.shape[:-1]
        nb, L, k = self.num_blocks, self.config.context_length, self.k
        x_flat = x_int.reshape(-1, nb, L, k)
        f_flat, v_flat = f_int.reshape(-1, L), valid.reshape(-1, L)
        texts = []
        for i in range(x_flat.shape[0]):
            texts += self.prompts(x_flat[i], f_flat[i], v_flat[i])
        conts = self.propose_texts(texts, int(seed.reshape(-1)[0]))
        parsed = [self.parse(t) for t in conts]
        props = np.array([p[0] for p in parsed], np.int32).reshape(*batch_shape, nb, k)
        ok = np.array([p[1] for p in parsed], bool).reshape(*batch_shape, nb)
        return props, ok


def lfx_lm(params, config, tokenizer) -> LanguageModel:
    """Wraps an `lfx.lm` model (SmolLM2 from `load_smollm2()`, or a small Llama) for EvoLLM."""
    from lfx import lm  # noqa: PLC0415

    return LanguageModel(params, config, tokenizer, lm.generate, lm.TokenFSM)


def make_evollm(lm: LanguageModel, **config_kwargs) -> EvoLLM:
    """Shorthand: EvoLLM(EvoLLMConfig(**config_kwargs), lm)."""
    return EvoLLM(EvoLLMConfig(**config_kwargs), lm)
