"""lfx.meta.lpg_analysis: the progress-variation measure behind the TA-LPG claim."""

import jax
import numpy as np
import pytest

from lfx.meta import lpg, lpg_analysis


def test_progress_variation_matches_numpy_and_is_scale_free():
    rng = np.random.default_rng(0)
    pi = rng.normal(size=(11, 5, 3)).astype(np.float32)
    ref = pi.std(0).mean() / pi.reshape(11, -1).std(1).mean()
    np.testing.assert_allclose(lpg_analysis.progress_variation(pi), ref, rtol=1e-5)
    np.testing.assert_allclose(lpg_analysis.progress_variation(7.0 * pi), ref, rtol=1e-5)
    same = np.broadcast_to(pi[:1], pi.shape)  # targets that ignore progress
    assert float(lpg_analysis.progress_variation(same)) < 1e-6


SMALL = dict(hidden_size=8, embed_size=4, y_dim=4, env_name="LPG-Random-Small", random_levels=True,
             num_envs=2, num_steps=6, max_updates=4, agent_hidden=8)


def test_plain_lpg_targets_ignore_progress_and_ta_lpg_targets_do_not():
    key = jax.random.key(0)
    plain = lpg.LPGConfig(**SMALL)
    out = lpg_analysis.target_variation(plain, lpg.init_lpg(key, plain), jax.random.key(1), num_batches=2)
    assert out["pi_hat_progress_variation"] < 1e-6 and out["y_hat_progress_tv"] < 1e-6
    ta = lpg.LPGConfig(**SMALL, temporally_aware=True)
    out = lpg_analysis.target_variation(ta, lpg.init_lpg(key, ta), jax.random.key(1), num_batches=2)
    assert out["pi_hat_progress_variation"] > 1e-3
    assert len(out["pi_hat_mean"]) == len(lpg_analysis.PROGRESS_GRID)


def test_saved_params_round_trip_and_shape_mismatch_is_refused(tmp_path):
    cfg = lpg.LPGConfig(**SMALL, temporally_aware=True)
    params = lpg.init_lpg(jax.random.key(2), cfg)
    np.savez(tmp_path / "params.npz", **{"/".join(map(str, p)): np.asarray(v) for p, v in
                                        jax.tree_util.tree_flatten_with_path(params)[0]})
    back = lpg_analysis.load_params(str(tmp_path / "params.npz"), params)
    jax.tree.map(np.testing.assert_array_equal, back, params)
    other = lpg.init_lpg(jax.random.key(2), lpg.LPGConfig(**{**SMALL, "hidden_size": 16}))
    with pytest.raises(ValueError, match="shape mismatch"):
        lpg_analysis.load_params(str(tmp_path / "params.npz"), other)


def test_lpg_agent_runs_on_image_observations_flattened():
    cfg = lpg.LPGConfig(**{**SMALL, "env_name": "Breakout-MinAtar", "random_levels": False})
    state, m = jax.jit(lpg.make_lpg_train(cfg))(jax.random.key(0), lpg.init_lpg(jax.random.key(1), cfg))
    assert state.obs.shape == (cfg.num_envs, 10 * 10 * 4)
    assert state.params["torso"]["w"].shape[0] == 400
