"""lfx.meta.evaluate: the vmapped objective evaluation behind the README's main job."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.meta import evaluate, fitness, lpo
from lfx.rl import ppo

CFG = ppo.PPOConfig(env_name="CartPole-v1", num_envs=4, num_steps=32, total_timesteps=4 * 32 * 12,
                    update_epochs=4, num_minibatches=4, hidden_sizes=(16, 16))
# A large step size moves the ratio r far from 1 within an update, where the drifts differ.
HP = ppo.HParams(lr=1e-2)
# The lifetime test's drift has no PPO clip, so a smaller step keeps float rounding from being
# amplified into different episodes between the vmapped and the single-objective run.
HP_L = ppo.HParams(lr=2.5e-3)
# Plain PPO (built-in clip objective) over a seed axis; compiled once, HParams are traced.
_PPO_ALONE = jax.jit(jax.vmap(ppo.make_train(CFG).train, in_axes=(0, None)))


def test_ppo_member_trains_like_plain_ppo_and_chunking_changes_nothing():
    objectives, _ = evaluate.stack_objectives(["ppo", "ta_lpo/cartpole_cpu"])
    key = jax.random.key(3)
    final, curves = evaluate.train_objectives(CFG, objectives, key, 2, hparams=HP, progress_chunks=1,
                                              progress=False)
    assert curves.shape == (2, 2, CFG.num_updates) and final.shape == (2, 2)
    # The "ppo" member is PPO's clipped objective written as a drift: same keys -> same learning
    # curve as the PPO recipe with its built-in clip objective (up to float rounding).
    _, ref = _PPO_ALONE(jax.random.split(key, 2), HP)
    np.testing.assert_allclose(curves[0], np.asarray(ref["train/episode_return"]), rtol=1e-3, atol=1e-2)
    # The TA-LPO member really is a different objective.
    assert np.abs(curves[1] - curves[0]).max() > 0.1
    # Splitting the lifetime into chunks (the progress bar) leaves every curve unchanged: TA-LPO's
    # n/N comes from the update counter in the state, not from the chunk.
    _, chunked = evaluate.train_objectives(CFG, objectives, key, 2, hparams=HP, progress_chunks=5,
                                          progress=False)
    np.testing.assert_allclose(chunked, curves, rtol=1e-5, atol=1e-4)


def _write_run(path, params, drift_name):
    """A minimal experiments/meta_train.py workdir: params.npz + provenance.json."""
    np.savez(path / "params.npz", **{k: np.asarray(v) for k, v in params.items()})
    (path / "provenance.json").write_text(json.dumps({"config": {"drift": drift_name}}))
    return str(path)


def test_lifetime_member_in_a_stack_trains_like_its_own_objective(tmp_path):
    """A lifetime-feature drift (its own group) evaluated between PPO and LPO gives, row for row in
    the caller's order, the curves of training each objective alone with the same keys."""
    cfg_l = lpo.DRIFT_CONFIGS["ta_lpo_lifetime"]
    p_l = lpo.init_drift(jax.random.key(7), cfg_l, output_scale=1.0)
    run_dir = _write_run(tmp_path, p_l, "ta_lpo_lifetime")
    names = ["ppo", run_dir, "lpo/cartpole_cpu"]
    groups, originals = evaluate.stack_objectives(names)
    assert list(originals) == names
    assert [(g.config, g.indices) for g in groups] == [(evaluate.TA_CFG, (0, 2)), (cfg_l, (1,))]

    key = jax.random.key(3)
    final, curves = evaluate.train_objectives(CFG, groups, key, 2, hparams=HP_L, progress_chunks=1,
                                              progress=False)
    assert curves.shape == (3, 2, CFG.num_updates) and final.shape == (3, 2)
    keys = jax.random.split(key, 2)

    # The drift alone, over [seed] x [params]: its own parameters, and the same drift seeing 2N
    # instead of the run's own N (log(2N)·x = log(N)·x + log(2)·x folds into the x rows of W_h).
    nf = 8
    w = p_l["w_hidden"]
    p_2n = {"w_hidden": w.at[:nf].add(np.log(2.0) * w[2 * nf:]), "w_out": p_l["w_out"]}
    train_l = ppo.make_train(CFG, lpo.make_lpo_objective(cfg_l)).train
    _, m = jax.jit(jax.vmap(jax.vmap(train_l, in_axes=(0, None, None)), in_axes=(None, None, 0)))(
        keys, HP_L, jax.tree.map(lambda *x: jnp.stack(x), p_l, p_2n))
    ref_l, ref_2n = np.asarray(m["train/episode_return"])
    ref_ppo = np.asarray(_PPO_ALONE(keys, HP_L)[1]["train/episode_return"])

    for o, ref in ((0, ref_ppo), (1, ref_l)):
        np.testing.assert_allclose(curves[o], ref, rtol=1e-3, atol=1e-2, err_msg=names[o])
        np.testing.assert_allclose(final[o], np.asarray(fitness.final_return(ref, 0.1)), rtol=1e-3)
    assert np.abs(curves[2] - curves[0]).max() > 0.1  # row 2 is LPO, not a copy of PPO's row
    # The comparison can see a wrong lifetime: N -> 2N trains differently.
    assert np.abs(ref_2n - curves[1]).max() > 0.1


def test_unknown_or_inconsistent_objective_is_refused(tmp_path):
    with pytest.raises(ValueError, match="Unknown objective 'no/such'"):
        evaluate.stack_objectives(["ppo", "no/such"])
    with pytest.raises(ValueError, match="distinct"):
        evaluate.stack_objectives(["ppo", "ppo"])
    # params.npz of a 16-feature drift under a provenance that names the 24-feature lifetime drift.
    p16 = lpo.init_drift(jax.random.key(0), lpo.DRIFT_CONFIGS["ta_lpo_ppo_init"])
    with pytest.raises(ValueError, match="do not match"):
        evaluate.stack_objectives(["ppo", _write_run(tmp_path, p16, "ta_lpo_lifetime")])
