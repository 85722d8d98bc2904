"""SERENE (and STAX): alternate novelty-search exploration with reward-exploiting emitters.

Paolo et al., "Sparse Reward Exploration via Novelty Search and Emitters" (SERENE, arXiv:2102.03140);
STAX = the same scheduler on TAXONS' learned behaviour space ("Discovering and Exploiting Sparse
Rewards in a Learned Behavior Space", arXiv:2203.15474). `variant="authors"` (the default) follows
the authors' code, GPaolo/SERENE and GPaolo/STAX: `core/evolvers/serene.py` (`candidate_emitter_eval`,
`emitter_step`), `core/evolvers/emitter_evolver.py` (`calculate_init_sigma`, `init_emitters`,
`update_reward_archive`, `_stagnation`, `choose_emitter`, `candidates_by_novelty`,
`update_emitter_novelties`, `elaborate_archive_candidates`), `core/emitters/base_emitter.py` and
`elitist_emitter.py` (`FitnessEmitter`), `core/searcher.py` (`_main_search`, `_emitter_search`),
`core/schedulers/alternating.py`, `parameters.py` (defaults). Our transcription:

* Scheduler: chunks of `chunk_size` (1000) evaluations alternating exploration (NS generations; the
  initial population counts in the first chunk) and exploitation. An exploitation chunk with no
  candidates and no emitters spends nothing. lfx caps every generation at what is left of its chunk
  and of the budget (`lfx.qd.budget`), so ns_evaluations + emitter_evaluations == budget exactly
  (the authors' loops may overshoot a chunk by part of a generation).
* Candidates (`init_emitters`): after each NS generation every agent of population + offspring with
  reward > 0 not seen before (the initial population's at the first generation, then the new
  offspring) becomes a candidate and enters the reward archive. Its sigma (`calculate_init_sigma`) is

      sigma = min_j ||g - g_j||_2 / 3   over the other genomes g_j of that population + offspring,

  the genome-space distance as it is (no 1/sqrt(D)); sigma = 0.05 (`HParams.sigma`) when it is 0.
* An emitter (`FitnessEmitter`) is a population of E = 6 genomes, initially E mutations of the
  ancestor; a generation makes 2 offspring per member (12 evaluations), x' = clip(x + sigma eps),
  eps ~ N(0, I) with the emitter's fixed sigma, and keeps the E best by reward of members +
  offspring (ties: the later entry first, as `np.argsort(...)[::-1]`). `values[t]` = the members'
  rewards [E] after generation t (values[0]: the initial population's).
* Exploitation chunk (`emitter_step`): first the candidates, most novel against the reward archive
  first (novelty of the ancestor's descriptor), are bootstrapped: their initial population plus
  `bootstrap_generations` (5) generations (66 evaluations), while more than chunk_size / 3 of the
  chunk is left. A candidate becomes an emitter iff its improvement (`estimate_improvement`)

      improvement = max(mean(values[-3:]) - mean(values[:3]), 0)

  is > 0 (means over all 3 x E rewards; values[:3] are fixed at the first estimate). Then, while the
  chunk lasts: one emitter is chosen at random from the first Pareto front of (novelty of its
  ancestor against the reward archive, improvement) (`choose_emitter`; the highest improvement when
  the reward archive is empty) and **runs for the rest of the chunk** unless it stops; its
  improvement is re-estimated when the chunk ends. Every emitter generation stores in the reward
  archive its best member if none was stored yet (and its reward > 0), else every member better
  than the best it stored (`update_reward_archive`), and computes its members' novelty against the
  NS reference set (population + last offspring + NS archive + reward archive, taken at the start of
  the chunk): members more novel than the emitter's most novel agent so far (initially the
  ancestor) are kept as NS-archive candidates (`update_emitter_novelties`).
* Stopping (`_stagnation`, `stagnation="custom"`, the authors' default): with
  bottom = int(20 D / E + 120) (D the genome's parameter count, E = 6), an emitter that has made
  more than `bottom` generations (bootstrap included) stops when, over W = values[-bottom:],

      median(W[:20]) >= median(W[-20:])  or  max(W[:20]) >= max(W[-20:])

  (medians and maxima over all rewards of those generations). `stagnation="original"` is the
  authors' CMA-ES-like alternative (bottom = max(int(30 D / E + 120), int(0.2 steps)), first /
  last 30 % of the window, medians of per-generation maxima and medians). A stopped emitter's
  ancestor goes to the reward archive again, and when the chunk ends `archive_add` (5) of its
  NS-archive candidates (random ones, or the most novel with the NS config's
  `archive_strategy="novel"`) go to the NS archive (`elaborate_archive_candidates`).
* The NS generations use the reward archive as further novelty references
  (`EmitterEvolver.evaluate_performances` / `get_novelty_ref_set`), newest `reward_archive_capacity`
  entries. Novelty in the emitter bookkeeping is the authors' `utils.novelty`: the mean distance
  to the k = 15 nearest references after dropping the nearest one.
* STAX: descriptors are the autoencoder's latent codes; after every retraining the host
  recomputes them from the stored images (reward archive, candidates' and emitters' ancestors and
  members, NS-archive candidates, last offspring), as `Searcher.chunk_step` does.

Deviations we chose: D is lfx's genome size (one bias per unit, e.g. 255 for the arm's 20-5-5-20
MLP; the authors' controller has one bias per layer, 228); the candidate pool is unbounded as in
the authors' code (`max_candidates` applies to the old variant only).

`variant="lfx_v1"` is lfx's scheduler before issue 19, kept because documented figures depend on
it (docs/results/qd.md, rows "before issue 19"): one elite with `emitter_population` offspring per
generation, candidates capped at `max_candidates` (the most novel), picked from the Pareto front of
(novelty, reward), sigma = d / 3 with d the distance to the nearest population + archive genome,
scaled by 1 / sqrt(D) (`sigma_per_dimension`), an emitter re-picked every generation from the
Pareto front of (novelty, improvement of its elite) and ended after `stagnation_generations` (10)
generations without improvement.

`make_serene(task, config)` builds and jits the explorer and the emitter generations once; runs
with any seed or `HParams` value (`run_serene(..., functions=...)`) reuse them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lfx.qd import archive as arch
from lfx.qd.explore import Explorer, ExplorerConfig, ExplorerFunctions, make_explorer
from lfx.qd.mutation import gaussian_mutation
from lfx.qd.recipe import HParams
from lfx.qd.task import Task, evaluate_granted, init_tracker, summary

VARIANTS = ("authors", "lfx_v1")
STAGNATION_RULES = ("custom", "original")


@dataclasses.dataclass(frozen=True)
class SereneConfig:
    """Static settings of SERENE / STAX (see the module docstring).

    variant: "authors" (GPaolo/SERENE, STAX) or "lfx_v1" (lfx before issue 19).
    chunk_size: evaluations per exploration / exploitation chunk (1000).
    emitter_population: E, members of an emitter ("authors"; 6) or offspring of the elite ("lfx_v1").
    emitter_offspring_per_member: offspring per member per generation ("authors"; 2, so 12 evaluations).
    bootstrap_generations: generations of a candidate before its improvement is judged (5).
    candidate_reserve: bootstrapping stops when at most this fraction of the chunk is left (1/3).
    stagnation, stagnation_scale, stagnation_offset: "authors" stopping rule ("custom": bottom =
      int(scale D / E + offset), 20 and 120; "original": the CMA-ES-like rule, 30 and 120).
    stagnation_window: generations compared at each end of the window in "custom" (20).
    reward_archive_capacity: newest reward-archive entries used as NS novelty references.
    reward_archive_in_ns: whether NS uses the reward archive as references (the authors do).
    stagnation_generations, max_candidates, sigma_per_dimension, min_sigma: "lfx_v1" only.
    sigma_divisor: the 3 of sigma = d / 3 (both variants).
    """

    explorer: ExplorerConfig = dataclasses.field(default_factory=ExplorerConfig)
    variant: str = "authors"
    chunk_size: int = 1000
    emitter_population: int = 6
    emitter_offspring_per_member: int = 2
    bootstrap_generations: int = 5
    candidate_reserve: float = 1.0 / 3.0
    stagnation: str = "custom"
    stagnation_scale: float | None = None  # None: 20 ("custom") or 30 ("original")
    stagnation_offset: int = 120
    stagnation_window: int = 20
    reward_archive_capacity: int = 5000
    reward_archive_in_ns: bool = True
    stagnation_generations: int = 10
    max_candidates: int = 50
    sigma_divisor: float = 3.0
    sigma_per_dimension: bool = True
    min_sigma: float = 1e-3

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"SereneConfig.variant must be one of {VARIANTS}, got {self.variant!r}.")
        if self.stagnation not in STAGNATION_RULES:
            raise ValueError(f"SereneConfig.stagnation must be one of {STAGNATION_RULES}, got "
                             f"{self.stagnation!r}.")
        if self.chunk_size <= 0 or self.emitter_population <= 0 or self.emitter_offspring_per_member <= 0:
            raise ValueError("chunk_size, emitter_population and emitter_offspring_per_member must be "
                             "positive.")
        if self.bootstrap_generations <= 0 or self.stagnation_generations <= 0:
            raise ValueError("bootstrap_generations and stagnation_generations must be positive.")
        if not 0 <= self.candidate_reserve < 1:
            raise ValueError(f"candidate_reserve must be in [0, 1), got {self.candidate_reserve}.")
        if self.stagnation_offset < 0 or self.stagnation_window <= 0 or (
                self.stagnation_scale is not None and self.stagnation_scale < 0):
            raise ValueError("stagnation_scale and stagnation_offset must be >= 0 and "
                             "stagnation_window positive.")
        if self.reward_archive_capacity <= 0:
            raise ValueError(f"reward_archive_capacity must be positive, got {self.reward_archive_capacity}.")
        if self.max_candidates <= 0 or not self.sigma_divisor > 0 or not self.min_sigma >= 0:
            raise ValueError(
                f"max_candidates and sigma_divisor must be positive and min_sigma >= 0, got "
                f"{self.max_candidates}, {self.sigma_divisor}, {self.min_sigma}.")


# ------------------------------------------------------------------------------------------------
# The authors' emitters (host side, NumPy)
# ------------------------------------------------------------------------------------------------


def authors_novelty(queries: np.ndarray, references: np.ndarray, k: int = 15) -> np.ndarray:
    """[N] novelty as the authors' `utils.novelty`: sort the distances to all references, drop the
    nearest, mean of the next k (0 with no reference left). queries [N, B], references [M, B]."""
    queries = np.asarray(queries, np.float64).reshape(len(queries), -1)
    references = np.asarray(references, np.float64).reshape(len(references), -1)
    if len(references) <= 1:
        return np.zeros(len(queries))
    d = np.sqrt(np.maximum(((queries[:, None, :] - references[None, :, :]) ** 2).sum(-1), 0.0))
    d = np.sort(d, axis=1)[:, 1:k + 1]
    return d.mean(1)


def stagnation_bottom(genome_dim: int, config: SereneConfig, steps: int = 0) -> int:
    """The window length of the authors' stagnation rule: int(20 D / E + 120) ("custom") or
    max(int(30 D / E + 120), int(0.2 steps)) ("original")."""
    e = config.emitter_population
    if config.stagnation == "custom":
        scale = 20.0 if config.stagnation_scale is None else config.stagnation_scale
        return int(scale * genome_dim / e + config.stagnation_offset)
    scale = 30.0 if config.stagnation_scale is None else config.stagnation_scale
    return max(int(scale * genome_dim / e + config.stagnation_offset), int(steps * 0.2))


def stagnated(values: list[np.ndarray], steps: int, genome_dim: int, config: SereneConfig) -> bool:
    """The authors' `_stagnation` on an emitter's values ([E] rewards per generation) after `steps`
    generations."""
    bottom = stagnation_bottom(genome_dim, config, steps)
    if steps <= bottom:
        return False
    window = np.asarray(values[-bottom:], np.float64)  # [bottom, E]
    if config.stagnation == "custom":
        w = config.stagnation_window
        first, last = window[:w], window[-w:]
        return bool(np.median(first) >= np.median(last) or np.max(first) >= np.max(last))
    limit = int(0.3 * bottom)
    maxes, medians = window.max(1), np.median(window, 1)
    return bool(np.median(maxes[:limit]) >= np.median(maxes[-limit:])
                and np.median(medians[:limit]) >= np.median(medians[-limit:]))


def initial_sigma(genome: np.ndarray, others: np.ndarray, fallback: float, divisor: float = 3.0) -> float:
    """`calculate_init_sigma`: min distance from `genome` [D] to `others` [M, D] (itself removed) / 3;
    `fallback` (the NS mutation sigma) when that is 0 or there is no other genome."""
    if len(others) == 0:
        return float(fallback)
    sigma = float(np.linalg.norm(np.asarray(others) - np.asarray(genome)[None], axis=-1).min()) / divisor
    return sigma if sigma != 0.0 else float(fallback)


@dataclasses.dataclass
class Agent:
    """One evaluated genome on the host: genome [D], reward, descriptor [B], image [S, S] or None."""

    genome: np.ndarray
    reward: float
    descriptor: np.ndarray
    image: np.ndarray | None = None
    novelty: float = 0.0


@dataclasses.dataclass
class PopulationEmitter:
    """An emitter (or candidate) of the authors' SERENE: a population of E genomes around an ancestor."""

    id: int
    ancestor: Agent
    sigma: float
    genomes: np.ndarray | None = None  # [E, D]
    rewards: np.ndarray | None = None  # [E]
    descriptors: np.ndarray | None = None  # [E, B]
    images: np.ndarray | None = None  # [E, S, S]
    values: list = dataclasses.field(default_factory=list)  # [E] rewards after each generation
    steps: int = 0
    improvement: float = 0.0
    init_values: list | None = None
    archived_values: list = dataclasses.field(default_factory=list)
    ancestor_novelty: float = 0.0
    most_novel: float | None = None  # None: the most novel agent is still the ancestor
    ns_archive_candidates: list = dataclasses.field(default_factory=list)

    def estimate_improvement(self) -> None:
        """`estimate_improvement` (local_improvement = False)."""
        if self.init_values is None:
            self.init_values = list(self.values[:3])
        self.improvement = float(max(np.mean(self.values[-3:]) - np.mean(self.init_values), 0.0))

    @property
    def most_novel_novelty(self) -> float:
        return self.ancestor_novelty if self.most_novel is None else self.most_novel


class Evaluated(NamedTuple):
    """What an emitter evaluation returns (NumPy): mutated genomes [M, D], rewards [M] (-inf where
    not granted), descriptors [M, B], images [M, S, S] or None, and how many were granted."""

    genomes: np.ndarray
    rewards: np.ndarray
    descriptors: np.ndarray
    images: np.ndarray | None
    granted: int


EvaluateFn = Callable[[np.ndarray, float, int], Evaluated]  # (parents [M, D], sigma, limit) -> Evaluated


class EmitterPhase:
    """Candidates, emitters and the reward archive of the authors' SERENE (pure host logic).

    `evaluate(parents [M, D], sigma, limit)` mutates each parent once and evaluates the mutants (at
    most `limit` of them are granted); tests pass a scripted one. `trace` lists every emitter
    generation as (phase "bootstrap" | "emit", emitter id, its step count after the generation).
    """

    def __init__(self, config: SereneConfig, genome_dim: int, rng: np.random.Generator, k: int = 15,
                 archive_add: int = 5, archive_strategy: str = "random"):
        self.config, self.genome_dim, self.rng, self.k = config, genome_dim, rng, k
        self.archive_add, self.archive_strategy = archive_add, archive_strategy
        self.candidates: dict[int, PopulationEmitter] = {}
        self.emitters: dict[int, PopulationEmitter] = {}
        self.reward_archive: list[Agent] = []
        self.finished: list[PopulationEmitter] = []  # stopped in the current chunk
        self.trace: list[tuple[str, int, int]] = []
        self.stats = {"candidates_seen": 0, "emitters_created": 0, "emitters_stopped": 0,
                      "bootstrap_evaluations": 0}
        self.sigmas: list[float] = []  # every candidate's initial sigma
        self._next_id = 0

    # -- bookkeeping ------------------------------------------------------------------------------
    def add_candidate(self, agent: Agent, sigma: float) -> int:
        """`init_emitters` for one rewarding agent: a candidate, and the agent in the reward archive."""
        cid = self._next_id
        self._next_id += 1
        self.candidates[cid] = PopulationEmitter(id=cid, ancestor=agent, sigma=float(sigma))
        self.sigmas.append(float(sigma))
        self.reward_archive.append(agent)
        self.stats["candidates_seen"] += 1
        return cid

    def reward_descriptors(self) -> np.ndarray:
        return np.stack([a.descriptor for a in self.reward_archive]) if self.reward_archive else None

    def reward_refs(self, descriptor_dim: int):
        """(descriptors [R, B], valid [R]) of the newest R = reward_archive_capacity entries."""
        r = self.config.reward_archive_capacity
        desc = np.zeros((r, descriptor_dim), np.float32)
        valid = np.zeros((r,), bool)
        newest = self.reward_archive[-r:]
        if newest:
            desc[:len(newest)] = np.stack([a.descriptor for a in newest])
            valid[:len(newest)] = True
        return desc, valid

    def _novelty_vs_reward_archive(self, descriptors: np.ndarray) -> np.ndarray:
        return authors_novelty(descriptors, self.reward_descriptors(), self.k)

    def candidates_by_novelty(self) -> list[int]:
        """`candidates_by_novelty`: ids, most novel ancestor (against the reward archive) first."""
        ids = list(self.candidates)
        if self.reward_archive and ids:
            nov = self._novelty_vs_reward_archive(np.stack([self.candidates[i].ancestor.descriptor
                                                            for i in ids]))
            ids = [i for _, i in sorted(zip(nov.tolist(), ids), reverse=True)]
        return ids

    def choose_emitter(self) -> int:
        """`choose_emitter`: random on the first Pareto front of (novelty vs reward archive, improvement)."""
        ids = list(self.emitters)
        imp = np.array([self.emitters[i].improvement for i in ids])
        if not self.reward_archive:
            return ids[int(np.argmax(imp))]
        nov = self._novelty_vs_reward_archive(np.stack([self.emitters[i].ancestor.descriptor for i in ids]))
        return ids[int(self.rng.choice(pareto_front(nov, imp)))]

    # -- one emitter generation ------------------------------------------------------------------
    def _initial_population(self, em: PopulationEmitter, evaluate: EvaluateFn, limit: int) -> int:
        e = self.config.emitter_population
        out = evaluate(np.repeat(em.ancestor.genome[None], e, 0), em.sigma, limit)
        em.genomes, em.rewards, em.descriptors, em.images = (out.genomes, out.rewards, out.descriptors,
                                                             out.images)
        em.values.append(em.rewards.copy())
        return out.granted

    def _generation(self, em: PopulationEmitter, evaluate: EvaluateFn, limit: int,
                    ns_refs: np.ndarray | None) -> int:
        per = self.config.emitter_offspring_per_member
        out = evaluate(np.repeat(em.genomes, per, 0), em.sigma, limit)  # 2 offspring per member, in order
        # elitist update (`update_pop`): the E best by reward of members + offspring
        rewards = np.concatenate([em.rewards, out.rewards])
        order = np.argsort(rewards, kind="stable")[::-1][: self.config.emitter_population]
        cat = lambda a, b: None if a is None else np.concatenate([a, b], 0)[order]
        em.genomes, em.descriptors = cat(em.genomes, out.genomes), cat(em.descriptors, out.descriptors)
        em.images, em.rewards = cat(em.images, out.images), rewards[order]
        em.values.append(em.rewards.copy())
        self._update_reward_archive(em)
        if ns_refs is not None:
            self._update_emitter_novelties(em, ns_refs)
        em.steps += 1
        return out.granted

    def _member(self, em: PopulationEmitter, i: int) -> Agent:
        return Agent(em.genomes[i].copy(), float(em.rewards[i]), em.descriptors[i].copy(),
                     None if em.images is None else em.images[i].copy())

    def _update_reward_archive(self, em: PopulationEmitter) -> None:
        """`update_reward_archive`."""
        if not em.archived_values:
            i = int(np.argmax(em.rewards))
            if em.rewards[i] > 0:
                em.archived_values.append(float(em.rewards[i]))
                self.reward_archive.append(self._member(em, i))
        else:
            limit = max(em.archived_values)
            for i in range(len(em.rewards)):
                if em.rewards[i] > limit:
                    em.archived_values.append(float(em.rewards[i]))
                    self.reward_archive.append(self._member(em, i))

    def _update_emitter_novelties(self, em: PopulationEmitter, ns_refs: np.ndarray) -> None:
        """`update_emitter_novelties`: members more novel than the most novel so far become NS-archive
        candidates; the most novel is updated."""
        nov = authors_novelty(em.descriptors, ns_refs, self.k)
        best = em.most_novel_novelty
        for i in range(len(nov)):
            if nov[i] > best:
                a = self._member(em, i)
                a.novelty = float(nov[i])
                em.ns_archive_candidates.append(a)
        j = int(np.argmax(nov))
        if nov[j] > best:
            em.most_novel = float(nov[j])

    # -- one exploitation chunk ------------------------------------------------------------------
    def exploit(self, evaluate: EvaluateFn, chunk: int, ns_refs: np.ndarray | None) -> int:
        """Runs one exploitation chunk of at most `chunk` evaluations; returns how many it used.

        ns_refs: [R, B] the NS reference set (population + last offspring + NS archive + reward
        archive) for the emitters' novelty; None skips the NS-archive candidates.
        """
        cfg = self.config
        spent = 0
        for cid in self.candidates_by_novelty():  # `candidate_emitter_eval`
            if chunk - spent <= cfg.chunk_size * cfg.candidate_reserve or chunk - spent <= 0:
                break
            em = self.candidates.pop(cid)
            used = self._initial_population(em, evaluate, chunk - spent)
            for _ in range(cfg.bootstrap_generations):
                if chunk - spent - used <= 0:
                    break
                used += self._generation(em, evaluate, chunk - spent - used, None)
                self.trace.append(("bootstrap", cid, em.steps))
            spent += used
            self.stats["bootstrap_evaluations"] += used
            em.estimate_improvement()
            if em.improvement > 0:
                self.emitters[cid] = em
                self.stats["emitters_created"] += 1
        while self.emitters and spent < chunk:  # `emitter_step`
            eid = self.choose_emitter()
            em = self.emitters[eid]
            if ns_refs is not None:
                em.ancestor_novelty = float(authors_novelty(em.ancestor.descriptor[None], ns_refs, self.k)[0])
            while spent < chunk:
                spent += self._generation(em, evaluate, chunk - spent, ns_refs)
                self.trace.append(("emit", eid, em.steps))
                if stagnated(em.values, em.steps, self.genome_dim, cfg):
                    self.reward_archive.append(em.ancestor)
                    self.finished.append(em)
                    self.stats["emitters_stopped"] += 1
                    del self.emitters[eid]
                    break
            if eid in self.emitters:
                em.estimate_improvement()
        return spent

    def take_archive_candidates(self) -> list[Agent]:
        """`elaborate_archive_candidates`: `archive_add` NS-archive candidates of each emitter that
        stopped in this chunk (random ones, or the most novel)."""
        out = []
        for em in self.finished:
            cands = em.ns_archive_candidates
            if self.archive_strategy == "random":
                idx = self.rng.permutation(len(cands))
            else:
                idx = np.argsort([c.novelty for c in cands], kind="stable")[::-1]
            out += [cands[i] for i in idx[: self.archive_add]]
        self.finished = []
        return out

    def refresh(self, encode: Callable[[np.ndarray], np.ndarray]) -> None:
        """Recomputes every stored descriptor from its image (STAX, after the autoencoder retrains)."""
        agents = list(self.reward_archive)
        for em in list(self.candidates.values()) + list(self.emitters.values()):
            agents += [em.ancestor] + em.ns_archive_candidates
        agents = [a for a in {id(a): a for a in agents}.values() if a.image is not None]
        if agents:
            desc = encode(np.stack([a.image for a in agents]))
            for a, d in zip(agents, desc):
                a.descriptor = np.asarray(d)
        for em in self.emitters.values():
            if em.images is not None:
                em.descriptors = np.asarray(encode(em.images))


def pareto_front(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Indices (ascending) of the points not dominated in (a, b), both maximised: the first front of
    the authors' `utils.fast_non_dominated_sort`."""
    idx = []
    for i in range(len(a)):
        dominated = np.any((a >= a[i]) & (b >= b[i]) & ((a > a[i]) | (b > b[i])))
        if not dominated:
            idx.append(i)
    return np.asarray(idx, int)


class SereneFunctions(NamedTuple):
    """The jitted pieces of SERENE / STAX, built once by `make_serene`."""

    config: SereneConfig
    explorer: ExplorerFunctions
    emit: Callable  # lfx_v1: (key, elite [D], sigma, tracker, limit) -> (tracker, offspring [E, D], rewards [E])
    emit_population: Callable  # authors: (key, parents [M, D], sigma, tracker, limit, aux) -> see below


def make_population_emitter_step(task: Task, config: SereneConfig, describe: Callable, learned: bool):
    """(key, parents [M, D], sigma, tracker, limit, aux) -> (tracker, mutants [M, D], rewards [M]
    (-inf if not granted), descriptors [M, B], images [M, S, S] or None, granted [M]): one mutant
    per parent row, unjitted."""
    clip = config.explorer.ns.clip

    def step(key, parents, sigma, tracker, limit, aux):
        k_m, k_e = jax.random.split(key)
        kids = gaussian_mutation(k_m, parents, sigma=sigma, clip=clip)
        tracker, ev, granted = evaluate_granted(k_e, task, tracker, kids, limit)
        return (tracker, kids, jnp.where(granted, ev.fitness, -jnp.inf), describe(aux, ev),
                ev.image if learned else None, granted)

    return step


def make_serene(task: Task, config: SereneConfig) -> SereneFunctions:
    """Builds and jits SERENE's (or STAX's) explorer and emitter generations once."""
    explorer = make_explorer(task, config.explorer)
    learned = config.explorer.mode != "ns"
    return SereneFunctions(config, explorer, jax.jit(make_emitter_step(task, config)),
                           jax.jit(make_population_emitter_step(task, config, explorer.describe, learned)))


def run_serene(key, task: Task, config: SereneConfig, total_budget: int,
               hparams: HParams | None = None, *, functions: SereneFunctions | None = None):
    """Runs SERENE (explorer mode "ns") or STAX (explorer mode "stax"), `config.variant`'s scheduler.

    Args:
      key: the run's key.
      task, config: what to run (`config` is taken from `functions` when given).
      total_budget: evaluations.
      hparams: traced hyperparameters of the exploration half (`HParams`).
      functions: `make_serene(task, config)`, to share compiled functions between runs.

    Returns (tracker, history, stats): history has one summary per NS generation / emitter generation;
    stats counts evaluations per phase and lists the phases as (kind, evaluations) chunks ("authors"
    also the emitter trace).
    """
    functions = functions if functions is not None else make_serene(task, config)
    if functions.config.variant == "lfx_v1":
        return _run_serene_v1(key, task, total_budget, hparams, functions)
    return _run_serene_authors(key, task, total_budget, hparams, functions)


def _host(x):
    return None if x is None else np.asarray(x)


def _run_serene_authors(key, task: Task, total_budget: int, hparams: HParams | None,
                        functions: SereneFunctions):
    config = functions.config
    ns_cfg = config.explorer.ns
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
    tracker = init_tracker(task, total_budget)
    explorer = Explorer(None, None, hparams, functions.explorer)
    fallback_sigma = float(explorer.hparams.sigma)
    key, k0 = jax.random.split(key)
    tracker = explorer.init(k0, tracker)
    used = lambda: int(tracker.counter.used)
    phase = EmitterPhase(config, task.genome_dim, rng, k=ns_cfg.k, archive_add=ns_cfg.archive_add,
                         archive_strategy=ns_cfg.archive_strategy)
    dim = int(explorer.state.descriptors.shape[-1])
    stats = {"ns_evaluations": used(), "emitter_evaluations": 0, "phases": [], "reward_archive": []}
    history = [summary(tracker)]
    step_i = 0
    trainings = explorer.ae_trainings
    last_off = None  # (descriptors [N, B], images or None, granted [N]) of the last NS generation
    first_generation = True

    def next_key():
        nonlocal step_i
        step_i += 1
        return jax.random.fold_in(key, step_i)

    def encode(images):
        return np.asarray(functions.explorer.encode(explorer.aux, jnp.asarray(images)))

    def evaluate(parents, sigma, limit) -> Evaluated:
        nonlocal tracker
        tracker, kids, rew, desc, img, granted = functions.emit_population(
            next_key(), jnp.asarray(parents, jnp.float32), jnp.asarray(sigma, jnp.float32), tracker,
            jnp.asarray(limit, jnp.int32), explorer.aux)
        history.append(summary(tracker))
        return Evaluated(np.asarray(kids), np.asarray(rew), np.asarray(desc), _host(img),
                         int(np.asarray(granted).sum()))

    spent_first = used()
    while used() < total_budget:
        # ---- exploration chunk (`_main_search`) -----------------------------------------------
        left = min(config.chunk_size - spent_first, total_budget - used())
        spent = spent_first
        spent_first = 0
        start = used()
        while used() - start < left:
            s = explorer.state
            pre = (np.asarray(s.genomes), np.asarray(s.rewards), np.asarray(s.descriptors),
                   _host(s.images), np.asarray(s.valid))
            extra = phase.reward_refs(dim) if config.reward_archive_in_ns else None
            extra = None if extra is None else (jnp.asarray(extra[0]), jnp.asarray(extra[1]))
            tracker, info = explorer.step(next_key(), tracker, limit=left - (used() - start),
                                          extra_refs=extra)
            history.append(summary(tracker))
            off_g, off_r = np.asarray(info["genomes"]), np.asarray(info["rewards"])
            off_d, granted = np.asarray(info["descriptors"]), np.asarray(info["granted"])
            off_i = _host(info["images"])
            last_off = (off_d, off_i, granted)
            # `init_emitters`: rewarding agents not seen before become candidates
            new = [("off", j) for j in np.nonzero((off_r > 0) & granted)[0]]
            if first_generation:
                new = [("pop", j) for j in np.nonzero((pre[1] > 0) & pre[4])[0]] + new
            first_generation = False
            if new:
                genomes = np.concatenate([pre[0][pre[4]], off_g[granted]], 0)
                pop_rows = np.nonzero(pre[4])[0]
                for src, j in new:
                    if src == "pop":
                        g, r, d, im = pre[0][j], pre[1][j], pre[2][j], None if pre[3] is None else pre[3][j]
                        row = int(np.searchsorted(pop_rows, j))
                    else:
                        g, r, d, im = off_g[j], off_r[j], off_d[j], None if off_i is None else off_i[j]
                        row = len(pop_rows) + int(np.sum(granted[:j]))
                        d = np.asarray(d)
                    others = np.delete(genomes, row, 0)
                    sigma = initial_sigma(g, others, fallback_sigma, config.sigma_divisor)
                    phase.add_candidate(Agent(np.array(g), float(r), np.array(d),
                                              None if im is None else np.array(im)), sigma)
            if explorer.learned and explorer.ae_trainings != trainings:  # STAX: descriptors moved
                trainings = explorer.ae_trainings
                phase.refresh(encode)
                if off_i is not None:
                    last_off = (encode(off_i), off_i, granted)
        spent += used() - start
        stats["ns_evaluations"] += used() - start
        stats["phases"].append(("ns", spent))
        if used() >= total_budget or not (phase.candidates or phase.emitters):
            continue
        # ---- exploitation chunk (`_emitter_search`) -------------------------------------------
        s = explorer.state
        refs = [np.asarray(s.descriptors)[np.asarray(s.valid)], last_off[0][last_off[2]],
                np.asarray(s.archive.descriptors)[np.asarray(s.archive.valid)]]
        if phase.reward_archive:
            refs.append(phase.reward_descriptors())
        ns_refs = np.concatenate(refs, 0)
        spent = phase.exploit(evaluate, min(config.chunk_size, total_budget - used()), ns_refs)
        stats["emitter_evaluations"] += spent
        stats["phases"].append(("emitter", spent))
        new = phase.take_archive_candidates()
        if new:
            descs = np.stack([a.descriptor for a in new])
            images = None
            if explorer.learned:
                images = np.stack([a.image for a in new])
                descs = encode(images)
            explorer.state = s.replace(archive=arch.insert(
                s.archive, jnp.asarray(np.stack([a.genome for a in new])), jnp.asarray(descs, jnp.float32),
                jnp.ones((len(new),), bool), None if images is None else jnp.asarray(images)))
    stats.update(phase.stats)
    stats["reward_archive"] = [a.reward for a in phase.reward_archive]
    stats["emitters_alive"] = len(phase.emitters)
    stats["candidate_sigma_median"] = float(np.median(phase.sigmas)) if phase.sigmas else 0.0
    stats["trace"] = phase.trace
    return tracker, history, stats


# ------------------------------------------------------------------------------------------------
# lfx's scheduler before issue 19 (variant "lfx_v1"), unchanged
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Emitter:
    """An emitter of the lfx_v1 scheduler: one elite."""

    elite: np.ndarray
    reward: float
    parent_reward: float
    novelty: float
    sigma: float
    stagnation: int = 0
    generations: int = 0

    @property
    def improvement(self) -> float:
        return self.reward - self.parent_reward


def make_emitter_step(task: Task, config: SereneConfig):
    """(key, elite [D], sigma, tracker, limit) -> (tracker, offspring [E, D], rewards [E] (-inf if
    not granted)): one emitter generation, unjitted."""
    e = config.emitter_population
    clip = config.explorer.ns.clip

    def step(key, elite, sigma, tracker, limit):
        k_m, k_e = jax.random.split(key)
        kids = gaussian_mutation(k_m, jnp.tile(elite[None], (e, 1)), sigma=sigma, clip=clip)
        tracker, ev, granted = evaluate_granted(k_e, task, tracker, kids, limit)
        return tracker, kids, jnp.where(granted, ev.fitness, -jnp.inf)

    return step


def _run_serene_v1(key, task: Task, total_budget: int, hparams: HParams | None,
                   functions: SereneFunctions):
    """lfx's SERENE before issue 19 (see the module docstring), unchanged."""
    config = functions.config
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
    tracker = init_tracker(task, total_budget)
    explorer = Explorer(None, None, hparams, functions.explorer)
    emit = functions.emit
    key, k0 = jax.random.split(key)
    tracker = explorer.init(k0, tracker)
    used = lambda: int(tracker.counter.used)
    stats = {"ns_evaluations": used(), "emitter_evaluations": 0, "phases": [("ns", used())],
             "emitters_created": 0, "candidates_seen": 0, "reward_archive": []}
    history = [summary(tracker)]
    candidates: list[tuple[np.ndarray, float, float]] = []  # (genome, reward, novelty)
    emitters: list[Emitter] = []
    step_i = 0

    def next_key():
        nonlocal step_i
        step_i += 1
        return jax.random.fold_in(key, step_i)

    def run_emitter_gen(em: Emitter, limit: int) -> int:
        nonlocal tracker
        before = used()
        tracker, kids, rewards = emit(next_key(), jnp.asarray(em.elite), jnp.asarray(em.sigma, jnp.float32),
                                      tracker, jnp.asarray(limit, jnp.int32))
        rewards = np.asarray(rewards)
        i = int(np.argmax(rewards))
        em.generations += 1
        if rewards[i] > em.reward:
            em.elite, em.reward, em.stagnation = np.asarray(kids[i]), float(rewards[i]), 0
        else:
            em.stagnation += 1
        history.append(summary(tracker))
        return used() - before

    while used() < total_budget:
        # ---- exploration chunk -------------------------------------------------------------
        left = min(config.chunk_size, total_budget - used())
        spent = 0
        while spent < left:
            before = used()
            tracker, info = explorer.step(next_key(), tracker, limit=left - spent)
            spent += used() - before
            history.append(summary(tracker))
            rew, gr = np.asarray(info["rewards"]), np.asarray(info["granted"])
            hit = np.nonzero((rew > 0) & gr)[0]
            if len(hit):
                g, nov = np.asarray(info["genomes"]), np.asarray(info["novelty"])
                stats["candidates_seen"] += len(hit)
                candidates += [(g[j], float(rew[j]), float(nov[j])) for j in hit]
                candidates = sorted(candidates, key=lambda c: -c[2])[: config.max_candidates]
        stats["ns_evaluations"] += spent
        stats["phases"].append(("ns", spent))
        if used() >= total_budget or not (candidates or emitters):
            continue
        # ---- exploitation chunk ------------------------------------------------------------
        left = min(config.chunk_size, total_budget - used())
        spent = 0
        while spent < left and (candidates or emitters):
            if candidates:
                nov = np.array([c[2] for c in candidates])
                rw = np.array([c[1] for c in candidates])
                front = pareto_front(nov, rw)
                g, r, n = candidates.pop(int(rng.choice(front)))
                refs, valid = explorer.reference_genomes()
                d = np.linalg.norm(np.asarray(refs) - g[None], axis=-1)
                d = np.where(np.asarray(valid) & (d > 0), d, np.inf)
                dist = float(d.min()) if np.isfinite(d.min()) else 0.05 * np.sqrt(g.size)
                sigma = dist / config.sigma_divisor
                if config.sigma_per_dimension:  # offspring then land about dist / 3 from the parent
                    sigma /= np.sqrt(g.size)
                sigma = max(sigma, config.min_sigma)
                em = Emitter(elite=g, reward=r, parent_reward=r, novelty=n, sigma=sigma)
                for _ in range(config.bootstrap_generations):
                    if spent >= left:
                        break
                    spent += run_emitter_gen(em, left - spent)
                if em.improvement > 0:
                    emitters.append(em)
                    stats["emitters_created"] += 1
            else:
                nov = np.array([e.novelty for e in emitters])
                imp = np.array([e.improvement for e in emitters])
                front = pareto_front(nov, imp)
                j = int(rng.choice(front))
                em = emitters[j]
                spent += run_emitter_gen(em, left - spent)
                if em.stagnation >= config.stagnation_generations:
                    stats["reward_archive"].append(em.reward)
                    emitters.pop(j)
        stats["emitter_evaluations"] += spent
        stats["phases"].append(("emitter", spent))
    stats["reward_archive"] += [e.reward for e in emitters]
    return tracker, history, stats
