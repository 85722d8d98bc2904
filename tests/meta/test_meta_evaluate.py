"""lfx.meta.evaluate: the vmapped objective evaluation behind the README's main job."""

import jax
import numpy as np

from lfx.meta import evaluate
from lfx.rl import ppo

CFG = ppo.PPOConfig(env_name="CartPole-v1", num_envs=4, num_steps=32, total_timesteps=4 * 32 * 12,
                    update_epochs=4, num_minibatches=4, hidden_sizes=(16, 16))
# A large step size moves the ratio r far from 1 within an update, where the drifts differ.
HP = ppo.HParams(lr=1e-2)


def test_ppo_member_trains_like_plain_ppo_and_chunking_changes_nothing():
    objectives, _ = evaluate.stack_objectives(["ppo", "ta_lpo/cartpole_cpu"])
    key = jax.random.key(3)
    final, curves = evaluate.train_objectives(CFG, objectives, key, 2, hparams=HP, progress_chunks=1,
                                              progress=False)
    assert curves.shape == (2, 2, CFG.num_updates) and final.shape == (2, 2)
    # The "ppo" member is PPO's clipped objective written as a drift: same keys -> same learning
    # curve as the PPO recipe with its built-in clip objective (up to float rounding).
    _, ref = jax.jit(jax.vmap(ppo.make_train(CFG), in_axes=(0, None)))(
        jax.random.split(key, 2), HP)
    np.testing.assert_allclose(curves[0], np.asarray(ref["train/episode_return"]), rtol=1e-3, atol=1e-2)
    # The TA-LPO member really is a different objective.
    assert np.abs(curves[1] - curves[0]).max() > 0.1
    # Splitting the lifetime into chunks (the progress bar) leaves every curve unchanged: TA-LPO's
    # n/N comes from the update counter in the state, not from the chunk.
    _, chunked = evaluate.train_objectives(CFG, objectives, key, 2, hparams=HP, progress_chunks=5,
                                          progress=False)
    np.testing.assert_allclose(chunked, curves, rtol=1e-5, atol=1e-4)


def test_non_embeddable_drift_is_refused(monkeypatch):
    from lfx.meta import lpo

    def fake_load(name):
        return None, lpo.DriftConfig(hidden_size=32, temporally_aware=True, ppo_init=True), {}

    monkeypatch.setattr(evaluate, "load_pretrained", fake_load)
    try:
        evaluate.stack_objectives(["ppo", "something/else"])
    except ValueError as e:
        assert "width 128" in str(e)
    else:
        raise AssertionError("a width-32 drift must be refused")
