"""SERENE / STAX's emitters as the authors wrote them: lifetime, scheduling, sigma, improvement.

The traces below are worked by hand from GPaolo/SERENE and GPaolo/STAX (`core/evolvers/serene.py`,
`emitter_evolver.py`, `core/emitters/base_emitter.py`), with a scripted evaluator: emitter genomes
are not mutated and every genome's reward is a scripted function of how many times its emitter has
been evaluated, so each generation's rewards are known in advance.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.qd.explore import ExplorerConfig
from lfx.qd.ns import NSConfig
from lfx.qd.serene import (
    Agent,
    EmitterPhase,
    Evaluated,
    PopulationEmitter,
    SereneConfig,
    authors_novelty,
    initial_sigma,
    run_serene,
    stagnated,
    stagnation_bottom,
)
from lfx.qd.task import make_task


def scripted(reward_of_call):
    """An evaluator whose mutants are their parents and whose rewards are reward_of_call(where, n):
    `where` = the parents' first genome (identifies the emitter), n = that emitter's call count."""
    calls = {}

    def evaluate(parents, sigma, limit):
        where = tuple(parents[0])
        n = calls.get(where, 0)
        calls[where] = n + 1
        m = len(parents)
        granted = min(m, max(int(limit), 0))
        rewards = np.full(m, float(reward_of_call(where, n)))
        rewards[granted:] = -np.inf
        return Evaluated(parents.copy(), rewards, parents.copy(), None, granted)

    return evaluate


def test_stagnation_window_is_the_authors_expression():
    cfg = SereneConfig()
    # int(20 D / 6 + 120): Curling's 3 x 5 MLP (D = 107), the arm's 2 x 5 (255), the maze's 2 x 5 (72)
    assert [stagnation_bottom(d, cfg) for d in (107, 255, 72)] == [476, 970, 360]
    orig = SereneConfig(stagnation="original")  # max(int(30 D / 6 + 120), int(0.2 steps))
    assert stagnation_bottom(255, orig, steps=100) == 1395
    assert stagnation_bottom(255, orig, steps=10_000) == 2000
    # never before `bottom` generations, whatever the rewards
    flat = [np.zeros(6)] * 500
    assert not stagnated(flat, 476, 107, cfg) and stagnated(flat, 477, 107, cfg)


@pytest.mark.parametrize("plateau,stop_step", [(30, 50), (5, 41)])
def test_emitter_lifetime_hand_worked(plateau, stop_step):
    # Rewards r_t = min(t, T) at the emitter's t-th evaluation (t = 0: its initial population).
    # Window bottom = 40 (scale 0, offset 40): the emitter may stop from step 41, when
    # max(W[:20]) = r_{s-20} >= max(W[-20:]) = r_s, i.e. s >= T + 20 (the median test needs
    # s >= T + 30): it stops at max(41, T + 20).
    cfg = SereneConfig(chunk_size=3000, stagnation_scale=0.0, stagnation_offset=40)
    phase = EmitterPhase(cfg, genome_dim=2, rng=np.random.default_rng(0))
    a = Agent(np.array([0.0, 0.0]), 1.0, np.array([0.0, 0.0]))
    phase.add_candidate(a, sigma=0.1)
    spent = phase.exploit(scripted(lambda where, n: min(n, plateau)), 3000, ns_refs=None)
    steps = [s for kind, i, s in phase.trace if kind == "emit"]
    assert [s for kind, i, s in phase.trace if kind == "bootstrap"] == [1, 2, 3, 4, 5]
    assert steps == list(range(6, stop_step + 1))
    assert not phase.emitters and phase.stats["emitters_stopped"] == 1
    assert spent == 6 + 12 * stop_step  # initial population + 12 per generation
    # reward archive: the ancestor, the best member of generation 1, then all 6 members of every
    # generation 2..T (each beats the best stored before it), and the ancestor again at the stop
    assert len(phase.reward_archive) == 1 + 1 + 6 * (plateau - 1) + 1
    assert phase.reward_archive[-1] is a


def test_scheduling_hand_worked_trace():
    # Candidates A (0, 0), B (1, 0), C (10, 0). Novelty against the reward archive {A, B, C} (the
    # nearest, itself, dropped): A (1 + 10) / 2 = 5.5, B (1 + 9) / 2 = 5, C (10 + 9) / 2 = 9.5, so
    # C, A, B are bootstrapped in that order while more than chunk / 3 = 60 of the chunk is left.
    # Rewards: A 2n, B n, C 0.5 at the n-th evaluation: C has no improvement and is dropped.
    cfg = SereneConfig(chunk_size=180)
    phase = EmitterPhase(cfg, genome_dim=2, rng=np.random.default_rng(0))
    where = {(0.0, 0.0): "A", (1.0, 0.0): "B", (10.0, 0.0): "C"}
    ids = {}
    for (x, y), name in where.items():
        g = np.array([x, y])
        ids[name] = phase.add_candidate(Agent(g, 1.0, g.copy()), sigma=0.1)
    np.testing.assert_allclose(
        authors_novelty(np.array([[0.0, 0], [1, 0], [10, 0]]), phase.reward_descriptors()), [5.5, 5, 9.5])
    reward = {"A": lambda n: 2.0 * n, "B": lambda n: 1.0 * n, "C": lambda n: 0.5}
    evaluate = scripted(lambda w, n: reward[where[w]](n))
    name = {v: k for k, v in ids.items()}

    # chunk 1: C (66) -> 114 left > 60 -> A (66) -> 48 left <= 60: B waits. A, improvement
    # mean(6, 8, 10) - mean(0, 2, 4) = 6, is the only emitter and runs the last 48 evaluations.
    assert phase.exploit(evaluate, 180, ns_refs=None) == 180
    got = [(k, name[i], s) for k, i, s in phase.trace]
    assert got == ([("bootstrap", "C", s) for s in range(1, 6)] + [("bootstrap", "A", s) for s in range(1, 6)]
                   + [("emit", "A", s) for s in range(6, 10)])
    assert set(phase.emitters) == {ids["A"]} and set(phase.candidates) == {ids["B"]}
    assert phase.emitters[ids["A"]].improvement == pytest.approx(14.0)  # re-estimated: mean(14, 16, 18) - 2

    # chunk 2: B is bootstrapped (improvement mean(3, 4, 5) - mean(0, 1, 2) = 3). Both ancestors have
    # novelty 0 against the reward archive (their own stored members sit on them), so the front is A
    # (improvement 14 > 3), which runs for the whole rest of the chunk: 9 generations of 12 and a
    # last one of 6.
    phase.trace.clear()
    assert phase.exploit(evaluate, 180, ns_refs=None) == 180
    got = [(k, name[i], s) for k, i, s in phase.trace]
    assert got == [("bootstrap", "B", s) for s in range(1, 6)] + [("emit", "A", s) for s in range(10, 20)]
    assert phase.emitters[ids["B"]].improvement == pytest.approx(3.0)


def test_improvement_is_the_authors_estimate():
    em = PopulationEmitter(id=0, ancestor=Agent(np.zeros(2), 1.0, np.zeros(2)), sigma=0.1)
    em.values = [np.full(6, v) for v in (1.0, 1.0, 4.0, 2.0, 5.0, 5.0)]
    em.estimate_improvement()  # mean(values[-3:]) - mean(values[:3]) = 4 - 2
    assert em.improvement == pytest.approx(2.0)
    em.values += [np.full(6, 0.0)] * 3
    em.estimate_improvement()  # values[:3] stay fixed; negative improvements are 0
    assert em.improvement == 0.0


def test_initial_sigma_is_the_nearest_genome_distance_over_three():
    g = np.array([1.0, 2.0, 3.0])
    others = np.array([[1.0, 2.0, 9.0], [4.0, 6.0, 3.0], [1.0, 2.0, 3.0 + 1.5]])
    assert initial_sigma(g, others, fallback=0.05) == pytest.approx(1.5 / 3)  # no 1 / sqrt(D)
    assert initial_sigma(g, np.array([g]), fallback=0.05) == 0.05  # a twin: the NS sigma


def test_authors_novelty_drops_the_nearest_reference():
    refs = np.array([[0.0], [1.0], [3.0], [7.0]])
    # from 0: sorted distances 0, 1, 3, 7 -> drop 0 -> k = 2: (1 + 3) / 2
    np.testing.assert_allclose(authors_novelty(np.array([[0.0]]), refs, k=2), [2.0])
    # a query not among the references still loses its nearest: 0.5, 0.5, 2.5 -> (0.5 + 2.5) / 2
    np.testing.assert_allclose(authors_novelty(np.array([[0.5]]), refs, k=2), [1.5])


def test_serene_config_rejects_bad_values():
    with pytest.raises(ValueError, match="variant"):
        SereneConfig(variant="paper")
    with pytest.raises(ValueError, match="stagnation"):
        SereneConfig(stagnation="patience")
    with pytest.raises(ValueError, match="candidate_reserve"):
        SereneConfig(candidate_reserve=1.0)


def test_authors_scheduler_spends_the_budget_exactly_and_finds_reward():
    task = make_task("PointMass-sparse", hidden=(8,), max_steps_in_episode=30, max_speed=0.05,
                     goal_radii=jnp.array([0.2, 0.2]))
    ns = NSConfig(population_size=20, archive_capacity=300, archive_add=3)
    cfg = SereneConfig(explorer=ExplorerConfig(ns=ns), chunk_size=200)
    tracker, history, stats = run_serene(jax.random.key(3), task, cfg, 613)
    assert int(tracker.counter.used) == 613 == stats["ns_evaluations"] + stats["emitter_evaluations"]
    kinds = [k for k, _ in stats["phases"]]
    assert kinds[:2] == ["ns", "emitter"] and stats["phases"][0][1] == 200  # initial population included
    assert all(n <= 200 for _, n in stats["phases"])
    assert stats["emitters_created"] >= 1 and stats["candidates_seen"] >= stats["emitters_created"]
    # every emitter generation is traced and the chosen emitter keeps the chunk (runs of one id)
    emits = [i for k, i, _ in stats["trace"] if k == "emit"]
    assert emits and len(emits) > len({i for i in emits})
    assert history[-1]["best_reward"] > 0 and history[-1]["evaluations"] == 613
