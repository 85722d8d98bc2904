"""Sharding the seed axis over devices gives the single-device results (4 fake CPU devices)."""

import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    from lfx import parallel
    from lfx.rl import ppo
    assert jax.device_count() == 4, jax.devices()
    cfg = ppo.PPOConfig(num_envs=2, num_steps=16, total_timesteps=96, num_minibatches=2, update_epochs=2)
    train = jax.jit(jax.vmap(ppo.make_train(cfg).train, in_axes=(0, None)))
    keys = jax.random.split(jax.random.key(0), 8)
    ref_state, ref_metrics = train(keys, ppo.HParams())
    mesh = parallel.make_mesh()
    sharded_keys = parallel.shard_population(keys, mesh)
    state, metrics = train(sharded_keys, ppo.HParams())
    leaf = jax.tree.leaves(state.params)[0]
    assert len(leaf.sharding.device_set) == 4, leaf.sharding
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(ref_state.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["train/value_loss"], ref_metrics["train/value_loss"], rtol=1e-4, atol=1e-6)
    try:
        parallel.shard_population(keys[:6], mesh)
    except ValueError as e:
        assert "multiple of 4" in str(e)
    else:
        raise AssertionError("6 seeds over 4 devices must be refused")
    print("SHARDED_OK")
    """
)


def test_sharded_equals_single_device():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": ROOT,
    }
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "SHARDED_OK" in out.stdout
