"""lfx.offline.dataset: the schema, files, episode bookkeeping, D4RL loading and the normalised score."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lfx.offline import dataset as ds


def toy(n=6, discrete=False):
    """Two episodes: rows 0-2 end in a terminal, rows 3-5 are cut by a timeout."""
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    actions = (np.arange(n, dtype=np.int32) if discrete
               else np.linspace(-1, 1, 2 * n, dtype=np.float32).reshape(n, 2))
    return ds.Dataset(observations=obs, actions=actions, rewards=np.arange(n, dtype=np.float32),
                      next_observations=obs + 1, terminals=np.array([0, 0, 1, 0, 0, 0], bool),
                      timeouts=np.array([0, 0, 0, 0, 0, 1], bool))


def test_episode_returns_and_next_actions_respect_episode_ends():
    data = toy()
    np.testing.assert_allclose(ds.episode_returns(data), [0 + 1 + 2, 3 + 4 + 5])
    nxt = ds.next_actions(data)
    a = np.asarray(data.actions)
    np.testing.assert_array_equal(nxt[[0, 1, 3, 4]], a[[1, 2, 4, 5]])  # inside an episode: the next row's
    np.testing.assert_array_equal(nxt[[2, 5]], a[[2, 5]])  # at an episode's end: its own, never the next episode's


def test_to_batches_dones_are_terminals_not_timeouts():
    b = ds.to_batches(toy())
    np.testing.assert_array_equal(np.asarray(b.dones), [0, 0, 1, 0, 0, 0])
    assert b.actions.dtype == np.float32 and ds.to_batches(toy(discrete=True)).actions.dtype == np.int32


def test_normalized_score_is_d4rl_formula():
    assert ds.normalized_score(-200.0, -1200.0, -200.0) == pytest.approx(100.0)
    assert ds.normalized_score(-1200.0, -1200.0, -200.0) == pytest.approx(0.0)
    assert ds.normalized_score(-700.0, -1200.0, -200.0) == pytest.approx(50.0)


def test_save_load_roundtrip_and_refusals(tmp_path):
    data = toy()
    path = str(tmp_path / "toy-medium")
    ds.save(path, data, {"env": "Pendulum-v1", "level": "medium"})
    back, meta = ds.load(path + ".npz")
    for name in ds.FIELDS:
        np.testing.assert_array_equal(getattr(back, name), getattr(data, name))
    assert meta["env"] == "Pendulum-v1" and meta["size"] == 6 and meta["action_dim"] == 2
    with pytest.raises(FileExistsError, match="never overwritten"):
        ds.save(path, data, {})
    with pytest.raises(FileNotFoundError, match="offline_datasets.py"):
        ds.load(str(tmp_path / "missing"))
    meta["format_version"] = 99
    with open(path + ".json", "w") as f:
        json.dump(meta, f)
    with pytest.raises(ValueError, match="format_version"):
        ds.load(path)


def test_check_names_the_broken_field():
    data = toy()
    with pytest.raises(ValueError, match="next_observations"):
        ds.check(data.replace(next_observations=np.zeros((6, 4), np.float32)))
    with pytest.raises(ValueError, match="timeouts has 5 rows"):
        ds.check(data.replace(timeouts=np.zeros(5, bool)))


def test_load_d4rl_rebuilds_next_observations_like_qlearning_dataset(tmp_path):
    h5py = pytest.importorskip("h5py")
    obs = np.arange(7, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)  # row i is (i, i)
    terminals = np.array([0, 1, 0, 0, 0, 0, 0], bool)  # episode 0-1 ends in a terminal
    timeouts = np.array([0, 0, 0, 0, 1, 0, 0], bool)  # episode 2-4 is cut at row 4; episode 5-6 runs off the file
    path = str(tmp_path / "d4rl.hdf5")
    with h5py.File(path, "w") as f:
        f["observations"] = obs
        f["actions"] = np.linspace(-1, 1, 7, dtype=np.float32)[:, None]
        f["rewards"] = np.arange(7, dtype=np.float32)
        f["terminals"] = terminals
        f["timeouts"] = timeouts
    data = ds.load_d4rl(path)
    # rows kept: 0, 1, 2, 3, 5 (4 is a timeout row without a stored successor, 6 is the last row)
    np.testing.assert_array_equal(data.observations[:, 0], [0, 1, 2, 3, 5])
    np.testing.assert_array_equal(data.next_observations[:, 0], [1, 2, 3, 4, 6])
    np.testing.assert_array_equal(data.terminals, [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(data.timeouts, [0, 0, 0, 1, 1])  # rows 3 and 5 end their (cut) episodes
    np.testing.assert_allclose(ds.episode_returns(data), [0 + 1, 2 + 3, 5])
