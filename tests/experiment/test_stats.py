"""Aggregate statistics and stratified-bootstrap intervals: hand-worked values, identities, rliable."""

import numpy as np
import pytest
import scipy.stats

from lfx.experiment import stats


def test_iqm_hand_worked():
    rng = np.random.default_rng(0)
    # 8 runs: the mean of the middle four, 3..6.
    assert stats.iqm(rng.permutation(np.arange(1.0, 9.0))) == pytest.approx(4.5)
    # Ties straddling the cut: sorted 1,1,[1,1,1,10],10,10.
    assert stats.iqm(rng.permutation([1.0, 1, 1, 1, 1, 10, 10, 10])) == pytest.approx(3.25)
    # n = 10 cuts floor(2.5) = 2 from each end: i^2 for i = 2..7 (cutting 3 would give 21.5).
    assert stats.iqm(rng.permutation(np.arange(10.0) ** 2)) == pytest.approx(139 / 6)
    # [runs, tasks] is pooled, not averaged per task: 1,2,[3,4,100,200],300,400.
    matrix = np.array([[1.0, 100], [2, 200], [3, 300], [4, 400]])
    assert stats.iqm(matrix) == pytest.approx(76.75)
    assert stats.iqm(matrix) != pytest.approx(np.mean([stats.iqm(matrix[:, m]) for m in range(2)]))


@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (5, 3), (10, 5), (7, 11), (4, 57)])
def test_iqm_is_scipy_trim_mean(shape):
    x = np.random.default_rng(sum(shape)).normal(size=shape) ** 3
    np.testing.assert_allclose(stats.iqm(x), scipy.stats.trim_mean(x, 0.25, axis=None), rtol=1e-12)


def test_mean_median_optimality_gap_hand_worked():
    scores = np.array([[0.5, 2.0, 0.0], [1.5, 0.0, 0.0]])  # per-task means 1, 1, 0
    assert stats.mean(scores) == pytest.approx(2 / 3)
    assert stats.median(scores) == pytest.approx(1.0)
    # min(x, 1) = [[.5, 1, 0], [1, 0, 0]], mean 2.5 / 6.
    assert stats.optimality_gap(scores) == pytest.approx(1 - 2.5 / 6)
    assert stats.optimality_gap(scores, gamma=2.0) == pytest.approx(2 - 4.0 / 6)
    # One task: a 1-D array is [runs, 1].
    assert stats.median(np.array([1.0, 2.0, 9.0])) == pytest.approx(4.0)


@pytest.mark.parametrize("name", sorted(stats.STATISTICS))
def test_statistics_batch_over_leading_axes(name):
    f = stats.STATISTICS[name]
    x = np.random.default_rng(1).normal(size=(2, 3, 6, 4))
    batched = f(x)
    assert batched.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert batched[i, j] == pytest.approx(f(x[i, j]), rel=1e-12)
    np.testing.assert_allclose(f(x[0, 0, :, 0]), f(x[0, 0, :, :1]))


def test_interval_contains_point_and_shrinks_with_more_runs():
    rng = np.random.default_rng(2)
    widths = {}
    for num_runs in (10, 200):
        scores = rng.normal(1.0, 0.5, size=(num_runs, 3))
        for name, f in stats.STATISTICS.items():
            point, low, high = stats.bootstrap_ci(scores, f, seed=3)
            assert low <= point <= high, (name, num_runs)
            assert point == pytest.approx(f(scores))
            widths[name, num_runs] = high - low
    for name in stats.STATISTICS:
        # The width scales like 1/sqrt(num_runs): sqrt(20) ~ 4.5.
        assert widths[name, 200] < widths[name, 10] / 2.5, name


def test_resampling_is_stratified_by_task():
    # Disjoint value ranges per task: a resampled column may only hold its own task's values.
    scores = np.arange(40.0).reshape(10, 4) % 10 + 100 * np.arange(4)
    resamples = stats.stratified_resample(scores, 500, np.random.default_rng(4))
    assert resamples.shape == (500, 10, 4)
    for m in range(4):
        assert set(np.unique(resamples[:, :, m])) <= set(scores[:, m])
    # With replacement: some resampled column repeats a run.
    assert any(len(np.unique(r[:, 0])) < 10 for r in resamples)


def test_stratified_interval_differs_from_unstratified():
    # Each task's runs agree, so every stratified resample has the same per-task means.
    scores = np.tile([0.0, 1.0, 3.0], (6, 1))
    # IQM pools 18 scores and keeps sorted ranks 4..13: 0, 0, 1 x 6, 3, 3.
    for f, value in [(stats.mean, 4 / 3), (stats.median, 1.0), (stats.iqm, 1.2)]:
        assert stats.bootstrap_ci(scores, f, seed=5) == pytest.approx((value, value, value))
    # Pooling the tasks before resampling (the defect) would give a wide interval.
    rng = np.random.default_rng(5)
    pooled = rng.choice(scores.ravel(), size=(2000, *scores.shape))
    low, high = np.percentile(stats.mean(pooled), [2.5, 97.5])
    assert high - low > 0.5


def test_runs_are_redrawn_independently_per_task():
    # Task 1 is minus task 0 run by run: redrawing whole runs (one index for every task) would
    # keep the mean at 0; rliable draws an index per (run, task), so the interval has width.
    x = np.random.default_rng(6).normal(size=8)
    scores = np.stack([x, -x], axis=1)
    point, low, high = stats.bootstrap_ci(scores, stats.mean, seed=7)
    assert point == pytest.approx(0.0, abs=1e-12)
    assert high - low > 0.2 * x.std()


def test_batched_path_equals_one_call_per_resample():
    # 100 x 10 scores make the resample chunk (1048) smaller than num_resamples.
    scores = np.random.default_rng(8).gamma(2.0, size=(100, 10))
    fast = stats.bootstrap_ci(scores, stats.iqm, seed=9)
    slow = stats.bootstrap_ci(scores, stats.iqm, seed=9, batched=False)
    assert fast == pytest.approx(slow, rel=1e-12)
    # The same draws by hand: indices [B, N, M], percentiles with linear interpolation.
    rng = np.random.default_rng(9)
    values = []
    for start in range(0, 2000, 1048):
        idx = rng.integers(0, 100, size=(min(1048, 2000 - start), 100, 10))
        values += [stats.iqm(scores[i, np.arange(10)]) for i in idx]
    assert fast[1:] == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])), rel=1e-12)


def test_seed_and_confidence():
    scores = np.random.default_rng(10).normal(size=(12, 3))
    a = stats.bootstrap_ci(scores, stats.iqm, seed=11)
    assert stats.bootstrap_ci(scores, stats.iqm, seed=11) == a
    assert stats.bootstrap_ci(scores, stats.iqm, seed=12) != a
    narrow = stats.bootstrap_ci(scores, stats.iqm, seed=11, confidence=0.5)
    assert a[1] < narrow[1] <= narrow[2] < a[2]
    with pytest.raises(ValueError, match="confidence"):
        stats.bootstrap_ci(scores, stats.iqm, confidence=95)


def test_aggregate():
    rng = np.random.default_rng(13)
    a, b = rng.normal(size=(10, 4)), rng.normal(size=20)
    results = stats.aggregate({"a": a, "b": b}, num_resamples=500, seed=14)
    assert set(results) == {"a", "b"}
    assert set(results["a"]) == {"iqm", "mean", "median"}
    # A method's numbers do not depend on the other methods, and equal bootstrap_ci's.
    assert stats.aggregate({"a": a}, num_resamples=500, seed=14)["a"] == results["a"]
    for metric in ("iqm", "mean", "median"):
        expected = stats.bootstrap_ci(a, stats.STATISTICS[metric], num_resamples=500, seed=14)
        assert results["a"][metric] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="Unknown metric"):
        stats.aggregate({"a": a}, metrics=("iq",))


def test_plot_aggregate_draws_one_panel_per_metric(tmp_path):
    import matplotlib.image

    results = stats.aggregate(
        {"PPO": np.linspace(0, 1, 8), "LPO": np.linspace(0.5, 1.5, 8)}, num_resamples=200
    )
    one = stats.plot_aggregate(results, str(tmp_path / "one.png"), metrics=["iqm"])
    three = stats.plot_aggregate(results, str(tmp_path / "three.png"))
    assert one == str(tmp_path / "one.png")
    h1, w1, _ = matplotlib.image.imread(one).shape
    h3, w3, _ = matplotlib.image.imread(three).shape
    assert h1 == h3 and w3 == pytest.approx(3 * w1, rel=0.05)


# --- rliable as the oracle -----------------------------------------------------------------------


def _rliable_library():
    try:
        from rliable import library
    except ImportError:
        pytest.skip("rliable is not installed")
    except TypeError as err:  # arch<8 (rliable's pin) fails to import under pandas>=3
        pytest.skip(f"rliable.library does not import (arch<8 needs pandas<3): {err}")
    return library


@pytest.mark.parametrize("shape", [(10, 5), (7, 3), (13, 1), (5, 57)])
def test_point_estimates_equal_rliable(shape):
    metrics = pytest.importorskip("rliable.metrics")
    x = np.random.default_rng(shape[1]).normal(0.8, 0.6, size=shape)
    np.testing.assert_allclose(stats.iqm(x), metrics.aggregate_iqm(x), rtol=1e-12)
    np.testing.assert_allclose(stats.mean(x), metrics.aggregate_mean(x), rtol=1e-12)
    np.testing.assert_allclose(stats.median(x), metrics.aggregate_median(x), rtol=1e-12)
    np.testing.assert_allclose(stats.optimality_gap(x), metrics.aggregate_optimality_gap(x), rtol=1e-12)
    np.testing.assert_allclose(
        stats.optimality_gap(x, 0.5), metrics.aggregate_optimality_gap(x, 0.5), rtol=1e-12
    )


def test_intervals_equal_rliable():
    library = _rliable_library()
    scores = np.random.default_rng(15).gamma(2.0, 0.5, size=(10, 5))
    reps = 50000  # rliable's default
    np.random.seed(16)  # rliable's StratifiedBootstrap draws from NumPy's global generator
    point, interval = library.get_interval_estimates(
        {"x": scores},
        lambda x: np.array([f(x) for f in stats.STATISTICS.values()]),
        reps=reps,
        random_state=np.random.RandomState(16),
    )
    ours = stats.aggregate({"x": scores}, metrics=list(stats.STATISTICS), num_resamples=reps)["x"]
    for i, name in enumerate(stats.STATISTICS):
        low, high = interval["x"][:, i]
        assert ours[name][0] == pytest.approx(point["x"][i], rel=1e-12)
        # Fixed seeds; over other seeds the bounds differ by ~1% of the width at 50000 resamples.
        np.testing.assert_allclose(ours[name][1:], (low, high), atol=0.03 * (high - low), err_msg=name)
