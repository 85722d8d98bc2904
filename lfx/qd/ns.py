"""Novelty search as a jittable generation step, with a pluggable behaviour descriptor.

Lehman & Stanley, "Abandoning Objectives: Evolution Through the Search for Novelty Alone" (2011), as
configured by Paolo et al. (SERENE arXiv:2102.03140): a population of P genomes; each parent makes
`offspring_per_parent` Gaussian-mutated offspring (`HParams.sigma`, 0.05 by default, genomes clipped
to [-5, 5]); novelty
of every parent and offspring = mean distance to its k = 15 nearest neighbours among parents +
offspring + archive (+ optional extra references, e.g. SERENE's reward archive); `archive_add`
offspring per generation enter the archive: `archive_strategy="random"` (the default) picks them
uniformly at random among the granted offspring, as the authors' code does by default
(`selection_operator = 'random'` in GPaolo/STAX parameters.py, `update_archive` in
core/evolvers/base_evolver.py: shuffle the offspring, store the first `_lambda` = 5); "novel" stores
the most novel ones (the authors' `'best'`; lfx's default before issue 19). The P best by the
selection score survive ((mu + lambda) selection).

The descriptor is `descriptor_fn(aux, evaluation) -> [N, B]`: the hand-designed ground truth
(`aux` unused) for NS, an autoencoder's latent code for TAXONS / STAX (`aux` = its parameters). With
`score_fn(aux, images) -> [N]` (TAXONS' surprise) a traced flag picks, per generation, whether
selection and archive insertion use novelty or that score. The archive keeps each entry's image
(when `store_images`) so that a retrained autoencoder can recompute all descriptors (`refresh`).

`make_generation` gives those pieces (for the host drivers of `lfx.qd.explore`); `make_ns` is NS with
the hand-designed descriptor as a `QDRecipe` (one `lax.scan` over generations).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp

from lfx.qd import archive as arch
from lfx.qd.mutation import gaussian_mutation
from lfx.qd.novelty import knn_novelty
from lfx.qd.recipe import HParams, QDRecipe, generations_for_budget, make_scan_recipe
from lfx.qd.task import Task, Tracker, evaluate_granted, init_tracker


@dataclasses.dataclass(frozen=True)
class NSConfig:
    population_size: int = 100
    offspring_per_parent: int = 2
    archive_capacity: int = 5000
    archive_add: int = 5
    archive_strategy: str = "random"  # "random" (authors' default) | "novel" (most novel; lfx before issue 19)
    k: int = 15
    clip: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self):
        if self.population_size <= 0 or self.offspring_per_parent <= 0:
            raise ValueError(
                f"population_size and offspring_per_parent must be positive, got "
                f"{self.population_size} and {self.offspring_per_parent}.")
        if self.archive_strategy not in ("novel", "random"):
            raise ValueError(f"archive_strategy must be 'novel' or 'random', got {self.archive_strategy!r}.")
        if not 0 <= self.archive_add <= self.population_size * self.offspring_per_parent:
            raise ValueError("archive_add must be in [0, population_size * offspring_per_parent].")
        if self.archive_capacity <= 0 or self.k <= 0:
            raise ValueError(
                f"archive_capacity and k must be positive, got {self.archive_capacity} and {self.k}.")

    @property
    def num_offspring(self) -> int:
        return self.population_size * self.offspring_per_parent


@flax.struct.dataclass
class NSState:
    genomes: jax.Array  # [P, D]
    descriptors: jax.Array  # [P, B]
    images: jax.Array | None  # [P, S, S]; None when not stored (checkpoints refuse empty arrays)
    rewards: jax.Array  # [P]
    valid: jax.Array  # [P] bool (False only if the budget ran out at initialisation)
    archive: arch.Archive
    generation: jax.Array


def hand_descriptor(aux: Any, ev) -> jax.Array:
    return ev.descriptor


def make_generation(task: Task, config: NSConfig, descriptor_fn: Callable = hand_descriptor,
                    descriptor_dim: int = 2, score_fn: Callable | None = None,
                    store_images: bool = False):
    """Returns (init, step, refresh) for novelty search on `task` (pure, unjitted).

    init(key, tracker, aux) -> (state, tracker): evaluates P random genomes.
    step(key, state, tracker, aux, hparams, use_score, limit, extra_refs) -> (state, tracker, info):
      one generation; `hparams` (traced) gives the mutation's sigma and probability, `limit` caps the
      evaluations it may use (a scheduler's chunk), `use_score` (traced bool) selects by score_fn
      instead of novelty, `extra_refs` = (descriptors [R, B], valid [R]) are further novelty
      references (SERENE's reward archive; None: none). info: the offspring (genomes, rewards,
      descriptors, novelty, granted, images when stored) for SERENE's emitters.
    refresh(state, aux) -> state: recomputes population and archive descriptors from stored images.
    """
    p, n_off = config.population_size, config.num_offspring
    s = task.image_size if store_images else 0

    def describe(aux, ev):
        return descriptor_fn(aux, ev)

    def init(key, tracker: Tracker, aux):
        k_g, k_e = jax.random.split(key)
        genomes = task.init_genomes(k_g, p)
        tracker, ev, granted = evaluate_granted(k_e, task, tracker, genomes)
        archive = arch.init_archive(config.archive_capacity, task.genome_dim, descriptor_dim,
                                    jnp.zeros((s, s)) if s else None)
        state = NSState(
            genomes=genomes,
            descriptors=describe(aux, ev),
            images=ev.image if s else None,
            rewards=ev.fitness,
            valid=granted,
            archive=archive,
            generation=jnp.zeros((), jnp.int32),
        )
        return state, tracker

    def step(key, state: NSState, tracker: Tracker, aux, hparams: HParams, use_score=False,
             limit=None, extra_refs=None):
        _, k_mut, k_ev, k_arc = jax.random.split(key, 4)
        parent_idx = jnp.tile(jnp.arange(p), config.offspring_per_parent)
        offspring = gaussian_mutation(k_mut, state.genomes[parent_idx], sigma=hparams.sigma,
                                      mutation_prob=hparams.mutation_prob, clip=config.clip)
        tracker, ev, granted = evaluate_granted(k_ev, task, tracker, offspring, limit)
        off_desc = describe(aux, ev)
        refs = [state.descriptors, off_desc, state.archive.descriptors]
        refs_valid = [state.valid, granted, state.archive.valid]
        if extra_refs is not None:
            refs.append(extra_refs[0].astype(off_desc.dtype))
            refs_valid.append(extra_refs[1].astype(bool))
        all_desc = jnp.concatenate(refs, 0)
        all_valid = jnp.concatenate(refs_valid, 0)
        m = p + n_off
        nov = knn_novelty(all_desc[:m], all_desc, all_valid, jnp.arange(m), k=config.k)
        if score_fn is not None:
            imgs = jnp.concatenate([state.images, ev.image], 0)
            score = jnp.where(use_score, score_fn(aux, imgs), nov)
        else:
            score = nov
        cand_valid = all_valid[:m]
        # archive insertion among granted offspring
        off_score = score[p:]
        if config.archive_strategy == "novel":
            add = arch.top_k_mask(off_score, config.archive_add, granted)
        else:
            add = arch.top_k_mask(jax.random.uniform(k_arc, (n_off,)), config.archive_add, granted)
        archive = arch.insert(state.archive, offspring, off_desc, add, ev.image if s else None)
        # (mu + lambda) survival
        keep = arch.top_k_mask(score, p, cand_valid)
        idx = jnp.nonzero(keep, size=p, fill_value=0)[0]
        cat = lambda a, b: jnp.concatenate([a, b], 0)
        images = cat(state.images, ev.image)[idx] if s else state.images
        new = NSState(
            genomes=cat(state.genomes, offspring)[idx],
            descriptors=cat(state.descriptors, off_desc)[idx],
            images=images,
            rewards=cat(state.rewards, ev.fitness)[idx],
            valid=keep[idx],
            archive=archive,
            generation=state.generation + 1,
        )
        info = {
            "genomes": offspring,
            "rewards": jnp.where(granted, ev.fitness, 0.0),
            "novelty": nov[p:],
            "granted": granted,
            "descriptors": off_desc,
            "images": ev.image if s else None,
        }
        return new, tracker, info

    def refresh(state: NSState, aux):
        if not s:
            return state
        enc = lambda imgs: descriptor_fn(aux, _ImagesOnly(imgs))
        return state.replace(
            descriptors=enc(state.images),
            archive=state.archive.replace(descriptors=enc(state.archive.extras)),
        )

    return init, step, refresh


def make_ns(task: Task, config: NSConfig, budget: int) -> QDRecipe:
    """Novelty search with the hand-designed descriptor as a `QDRecipe` (one scan over generations).

    Its keys follow `lfx.qd.explore.run_explorer`'s schedule, so `train(key, hparams)` gives the same
    run as `run_explorer(key, task, ExplorerConfig(ns=config), budget, hparams)`.
    """
    init, step, _ = make_generation(task, config)

    def init_search(key, hparams):
        k_init, key = jax.random.split(key)
        _, k_pop, _ = jax.random.split(k_init, 3)  # Explorer.init's (autoencoder, population, train)
        state, tracker = init(k_pop, init_tracker(task, budget), None)
        return state, tracker, key

    def generation(k, state, tracker, hparams):
        _, k_step, _ = jax.random.split(k, 3)  # Explorer.step's (coin, step, train)
        state, tracker, _ = step(k_step, state, tracker, None, hparams)
        return state, tracker

    num = generations_for_budget(budget, config.population_size, config.num_offspring,
                                 "novelty search")
    return make_scan_recipe(config, budget, num, init_search, generation)


class _ImagesOnly:
    """Stands in for an Evaluation when only images are known (recomputing learned descriptors)."""

    def __init__(self, image):
        self.image = image
