"""lfx.gfn.report (experiments/gfn_ocgfn_report.py): rows picked by seed, 1-based iterations, paired comparison."""

import json

import numpy as np
import pytest

from lfx.gfn.report import load_rows, paired, table, tv_lower


def _run(path, seeds, pretrain_seed, adapted, scratch, queries):
    """A fake adapt workdir: summary.json (0-based first-all indices) and curves.npz."""
    path.mkdir()
    n = len(seeds)
    summary = {
        "seeds": seeds, "config": {"pretrain_seed": pretrain_seed}, "pretrain_success": 0.9 + pretrain_seed / 100,
        "direct_conversion_tv": 0.05,
        "adapted": {"iters_to_all_modes": adapted, "final_tv": [0.2 + i / 100 for i in range(n)]},
        "scratch": {"iters_to_all_modes": scratch, "final_tv": [0.3 + i / 100 for i in range(n)]},
    }
    path.joinpath("summary.json").write_text(json.dumps(summary))
    t = 8
    curves = np.arange(n * t).reshape(n, t)
    tv = np.full((n, t), np.nan)
    tv[:, ::2] = 0.5
    np.savez(path / "curves.npz", adapted=curves, scratch=-curves, tv_adapted=tv - 0.1 * np.arange(t) / t,
             tv_scratch=tv - 0.1 * (np.arange(t) >= 4),
             adapted_reward_queries=np.cumsum(np.ones((n, t)) * np.array(queries)[:, None], 1))


def test_rows_pick_seeds_and_pair_them(tmp_path):
    _run(tmp_path / "a", [0, 1, 2], 0, adapted=[9, 19, 29], scratch=[14, 4, 39], queries=[1, 2, 3])
    _run(tmp_path / "b", [3], 3, adapted=[49], scratch=[-1], queries=[5])
    _run(tmp_path / "c", [4], 4, adapted=[10], scratch=[10], queries=[7])
    rows, curves = load_rows([f"{tmp_path / 'a'}:1", str(tmp_path / "b"), str(tmp_path / "c")], tv_at=2)
    assert [(r["seed"], r["pretrain_seed"]) for r in rows] == [(1, 0), (3, 3), (4, 4)]
    assert [r["adapted_iters"] for r in rows] == [20, 50, 11]
    assert [r["scratch_iters"] for r in rows] == [5, None, 11]
    assert rows[0]["adapted_tv"] == pytest.approx(0.21) and rows[0]["scratch_tv"] == pytest.approx(0.31)
    assert [r["adapted_queries"] for r in rows] == [16.0, 40.0, 56.0]  # 8 iterations x per-step count
    np.testing.assert_array_equal(curves["adapted"][0], np.arange(8, 16))  # row 1 of run a
    np.testing.assert_array_equal(curves["scratch"][1], -np.arange(8))
    assert rows[0]["adapted_tv_at"] == pytest.approx(0.475) and rows[0]["scratch_tv_at"] == pytest.approx(0.5)
    assert tv_lower(curves, start=2) == (1, 3)  # evals 2, 4, 6: adapted 0.475, 0.45, 0.425; scratch 0.5, 0.4, 0.4
    p = paired(rows)  # seed 3 left out (scratch never); differences 5 - 20 = -15 and 11 - 11 = 0
    assert p["compared"] == 2 and p["left_out"] == 1
    assert p["diff_mean"] == pytest.approx(-7.5) and p["diff_std"] == pytest.approx(7.5)
    assert p["adapted_wins"] == 0.5
    assert p["sign_test_p"] == 1.0  # one non-tied pair, lost: P(<= 0 of 1) doubled, capped at 1
    rows9 = [{"adapted_iters": 1, "scratch_iters": 2}] * 9 + [{"adapted_iters": 2, "scratch_iters": 1}]
    assert paired(rows9)["sign_test_p"] == pytest.approx(2 * 11 / 1024)  # 9 of 10: 2 (C(10,0) + C(10,1)) / 2^10
    text = table(rows, curves)
    assert "| 3 | 3 | 0.930 |" in text and "| never |" in text
    assert "adapted faster in 0.5 of 2 (two-sided sign test p = 1.000)" in text and "1 rows left out" in text
    assert "at 0 of 0 evaluations from index 100 on" in text  # 8 iterations: no evaluation at index >= 100


def test_a_seed_not_in_the_run_is_rejected(tmp_path):
    _run(tmp_path / "a", [0, 1], 0, adapted=[1, 2], scratch=[3, 4], queries=[1, 1])
    with pytest.raises(ValueError, match="not 5"):
        load_rows([f"{tmp_path / 'a'}:5"])
