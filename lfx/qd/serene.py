"""SERENE (and STAX): alternate novelty-search exploration with reward-exploiting emitters.

Paolo et al., "Sparse Reward Exploration via Novelty Search and Emitters" (SERENE, arXiv:2102.03140);
STAX = the same scheduler on TAXONS' learned behaviour space ("Discovering and Exploiting Sparse
Rewards in a Learned Behavior Space", arXiv:2203.15474).

Scheduler: the evaluation budget is spent in chunks of `chunk_size` (1000 in the paper), alternating
an exploration chunk (NS generations, capped so a chunk is never overshot) and an exploitation chunk
(emitters). An exploitation chunk happens only when candidates or emitters exist; whatever it leaves
unused (all emitters ended) goes to the next exploration chunk. The counter is shared, so
ns_evaluations + emitter_evaluations == evaluations used <= budget, exactly.

Emitters (elitist on reward): every NS offspring with reward > 0 becomes a candidate (pool capped at
`max_candidates`, keeping the most novel). A candidate is picked from the Pareto front of (novelty,
reward), its sigma set to (distance d to the nearest other genome in population + archive) / 3, and it
is bootstrapped for `bootstrap_generations` (5) generations of `emitter_population` (6) offspring
x + sigma eps (clipped): it becomes an emitter only if it improved on its parent's reward. Each
emitter generation runs one emitter picked at random from the Pareto front of (novelty, improvement
so far); an emitter that has not improved its elite for `stagnation_generations` generations ends and
its elite goes to the reward archive.

On "sigma = d / 3": read per dimension, an isotropic Gaussian in D dimensions puts offspring about
sqrt(D) d / 3 away, far beyond the nearest neighbour when D is in the hundreds (the arm's policy has
676 parameters). lfx therefore scales by 1 / sqrt(D) by default (`sigma_per_dimension=True`), so the
offspring's expected distance is d / 3 as the rule intends; `sigma_per_dimension=False` is the literal
per-coordinate reading.

`make_serene(task, config)` builds and jits the explorer and the emitter generation once; runs with
any seed or `HParams` value (`run_serene(..., functions=...)`) reuse them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lfx.qd.explore import Explorer, ExplorerConfig, ExplorerFunctions, make_explorer
from lfx.qd.mutation import gaussian_mutation
from lfx.qd.recipe import HParams
from lfx.qd.task import Task, evaluate_granted, init_tracker, summary


@dataclasses.dataclass(frozen=True)
class SereneConfig:
    explorer: ExplorerConfig = dataclasses.field(default_factory=ExplorerConfig)
    chunk_size: int = 1000
    emitter_population: int = 6
    bootstrap_generations: int = 5
    stagnation_generations: int = 10
    max_candidates: int = 50
    sigma_divisor: float = 3.0
    sigma_per_dimension: bool = True
    min_sigma: float = 1e-3

    def __post_init__(self):
        if self.chunk_size <= 0 or self.emitter_population <= 0:
            raise ValueError("chunk_size and emitter_population must be positive.")
        if self.bootstrap_generations <= 0 or self.stagnation_generations <= 0:
            raise ValueError("bootstrap_generations and stagnation_generations must be positive.")
        if self.max_candidates <= 0 or not self.sigma_divisor > 0 or not self.min_sigma >= 0:
            raise ValueError(
                f"max_candidates and sigma_divisor must be positive and min_sigma >= 0, got "
                f"{self.max_candidates}, {self.sigma_divisor}, {self.min_sigma}.")


@dataclasses.dataclass
class Emitter:
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


def pareto_front(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Indices of the points not dominated in (a, b), both maximised."""
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
    emit: Callable  # (key, elite [D], sigma, tracker, limit) -> (tracker, offspring [E, D], rewards [E])


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


def make_serene(task: Task, config: SereneConfig) -> SereneFunctions:
    """Builds and jits SERENE's (or STAX's) explorer and emitter generation once."""
    return SereneFunctions(config, make_explorer(task, config.explorer),
                           jax.jit(make_emitter_step(task, config)))


def run_serene(key, task: Task, config: SereneConfig, total_budget: int,
               hparams: HParams | None = None, *, functions: SereneFunctions | None = None):
    """Runs SERENE (explorer mode "ns") or STAX (explorer mode "stax").

    Args:
      key: the run's key.
      task, config: what to run (`config` is taken from `functions` when given).
      total_budget: evaluations.
      hparams: traced hyperparameters of the exploration half (`HParams`).
      functions: `make_serene(task, config)`, to share compiled functions between runs.

    Returns (tracker, history, stats): history has one summary per NS generation / emitter generation;
    stats counts evaluations per phase and lists the phases as (kind, evaluations) chunks.
    """
    functions = functions if functions is not None else make_serene(task, config)
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
