"""Checkpoints: resume == uninterrupted, mismatched runs refused, NaN stops keep the last checkpoint."""

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.rl import ppo
from lfx.utils.checkpoint import Checkpointer, CheckpointMismatchError
from lfx.utils.loop import NonFiniteMetricError, run_chunked
from lfx.utils.metrics import MetricWriter

CFG = ppo.PPOConfig(num_envs=2, num_steps=16, total_timesteps=2 * 16 * 6, num_minibatches=2, update_epochs=2)
RUN_CONFIG = {"ppo": "tiny", "seeds": 2}


@functools.lru_cache(maxsize=None)
def _fns():
    recipe = ppo.make_ppo(CFG)
    keys = jax.random.split(jax.random.key(0), 2)
    init = jax.jit(jax.vmap(recipe.init, in_axes=(0, None)))

    @functools.partial(jax.jit, static_argnums=1)
    def run(state, n):
        return jax.vmap(functools.partial(recipe.run, num_updates=n), in_axes=(0, None))(state, ppo.HParams())

    return (lambda: init(keys, ppo.HParams())), run


def _run(workdir, resume=False, stop_after=None, run_config=RUN_CONFIG):
    init, run = _fns()
    ckpt = Checkpointer.open(str(workdir), run_config, resume=resume)
    writer = MetricWriter(str(workdir))
    return run_chunked(
        init, run, total_updates=CFG.num_updates, chunk_size=2, batch_ndim=1, checkpointer=ckpt,
        checkpoint_every=2, writer=writer, progress=False, stop_after=stop_after,
    )


def test_resumed_run_ends_with_exactly_the_uninterrupted_parameters(tmp_path):
    full_state, full_metrics = _run(tmp_path / "full")
    _run(tmp_path / "killed", stop_after=4)  # "killed" after 4 of 6 updates
    resumed_state, resumed_metrics = _run(tmp_path / "killed", resume=True)
    for a, b in zip(jax.tree.leaves(full_state.params), jax.tree.leaves(resumed_state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for k in full_metrics:
        np.testing.assert_array_equal(full_metrics[k], resumed_metrics[k])
    with open(tmp_path / "killed" / "metrics.jsonl") as f:
        steps = [json.loads(line)["step"] for line in f]
    assert steps == list(range(1, CFG.num_updates + 1))


def test_mismatched_config_is_refused_and_nothing_is_overwritten(tmp_path):
    _run(tmp_path, stop_after=2)
    before = sorted(os.listdir(tmp_path / "checkpoints"))
    with pytest.raises(CheckpointMismatchError, match="seeds"):
        Checkpointer.open(str(tmp_path), {"ppo": "tiny", "seeds": 3}, resume=True)
    with pytest.raises(CheckpointMismatchError, match="--resume"):
        Checkpointer.open(str(tmp_path), RUN_CONFIG, resume=False)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == before
    with open(tmp_path / "run.json") as f:
        assert json.load(f) == RUN_CONFIG


def test_nan_check_names_update_and_metric_and_keeps_last_good_checkpoint(tmp_path):
    def init():
        return {"x": jnp.float32(1.0), "t": jnp.int32(0)}

    @functools.partial(jax.jit, static_argnums=1)
    def run(state, n):
        def body(s, _):
            t = s["t"] + 1
            x = jnp.where(t >= 5, jnp.nan, s["x"] * 2.0)
            return {"x": x, "t": t}, {"train/x": x}
        return jax.lax.scan(body, state, None, n)

    ckpt = Checkpointer.open(str(tmp_path), {"nan": 1}, resume=False)
    with pytest.raises(NonFiniteMetricError, match=r"'train/x'.*update 5.*checkpoint \(update 4\)"):
        run_chunked(init, run, total_updates=8, chunk_size=2, checkpointer=ckpt, checkpoint_every=2,
                    nan_check=True, progress=False)
    assert ckpt.latest_step() == 4
    restored = ckpt.restore(4, {"state": init(), "metrics": {"train/x": np.zeros(4, np.float32)}})
    assert float(restored["state"]["x"]) == 16.0
