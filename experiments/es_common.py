"""Shared helpers of the lfx.es experiments (no flags here, so scripts can import it)."""

from __future__ import annotations

import pickle

import jax
import jax.numpy as jnp

from lfx.es import make_strategy
from lfx.es.evollm import EvoLLM, EvoLLMConfig, LanguageModel, lfx_lm, toy_lm


def load_lm(name: str, path: str) -> LanguageModel:
    """'smollm2' | 'teacher' (pickle from experiments/evollm_teacher.py) | 'untrained' | 'toy'."""
    if name == "smollm2":
        from lfx.lm import load_smollm2

        return lfx_lm(*load_smollm2())
    if name in ("teacher", "untrained"):
        from lfx import lm

        with open(path, "rb") as f:
            blob = pickle.load(f)
        config = lm.LlamaConfig(**blob["config"])
        tok = lm.CharTokenizer(blob["chars"])
        params = jax.tree.map(jnp.asarray, blob["params"])
        if name == "untrained":
            params = lm.init_params(jax.random.key(blob.get("init_seed", 0)), config)
        return lfx_lm(params, config, tok)
    if name == "toy":
        tok = toy_lm.ToyCharTokenizer()
        params, cfg = toy_lm.init_toy_lm(jax.random.key(0), tok)
        return LanguageModel(params, cfg, tok, toy_lm.generate)
    raise ValueError(f"Unknown lm {name!r}; use smollm2, teacher, untrained or toy.")


def build_strategy(name: str, cfg, dim: int, lm):
    if name == "evollm":
        e = cfg.evollm
        ec = EvoLLMConfig(
            population_size=cfg.population_size,
            num_dims=dim,
            block_size=e.block_size,
            context_length=e.context_length,
            context_selection=e.context_selection,
            sort_order=e.sort_order,
            x_decimals=e.x_decimals,
            fitness_digits=e.fitness_digits,
            sigma=e.sigma,
            sigma_decay=e.sigma_decay,
            temperature=e.temperature,
        )
        return EvoLLM(ec, lm)
    kwargs = {}
    if name == "hill_climbing":
        kwargs = {"std": cfg.hill_climbing_std}
    elif name == "open_es":
        kwargs = {"lr": cfg.open_es_lr, "std": cfg.open_es_std}
    return make_strategy(name, population_size=cfg.population_size, num_dims=dim, **kwargs)
