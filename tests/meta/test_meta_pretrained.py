"""Shipped discovered parameters load, behave as drifts, and reproduce their documented return."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.meta import lpo, pretrained

NAMES = pretrained.available()
# Training is deterministic for fixed seeds on one platform; across CPUs/XLA versions floating-point
# reassociation can move a chaotic RL run a little, hence a stated 5% relative tolerance.
RTOL = 0.05


def test_shipped_files_exist_and_unknown_name_raises():
    assert {"ta_lpo/cartpole_cpu", "lpo/cartpole_cpu"} <= set(NAMES)
    with pytest.raises(ValueError, match="available"):
        pretrained.load_pretrained("nope/none")


@pytest.mark.parametrize("name", ["../pretrained/ta_lpo/cartpole_cpu", "ta_lpo/../ta_lpo/cartpole_cpu",
                                  "/etc/passwd", "ta_lpo", "ta_lpo/cartpole_cpu/x", "/tmp/x/y"])
def test_names_outside_the_package_are_refused(name, tmp_path):
    with pytest.raises(ValueError, match="inside lfx/meta/pretrained"):
        pretrained.load_pretrained(name)
    with pytest.raises(ValueError, match="inside lfx/meta/pretrained"):
        pretrained.save_pretrained(name, {}, lpo.DriftConfig(), {})


@pytest.mark.parametrize("name", NAMES)
def test_shipped_drift_is_valid(name):
    params, cfg, info = pretrained.load_pretrained(name)
    assert params["w_hidden"].shape == (cfg.num_features, cfg.hidden_size)
    assert "command" in info and "hardware" in info and "check" in info
    lr = 0.5 * jax.random.normal(jax.random.key(0), (512,))
    adv = jax.random.normal(jax.random.key(1), (512,))
    d = lpo.drift_apply(params, lr, adv, config=cfg, progress=0.3, lifetime=97.0)
    assert float(d.min()) >= 0.0
    np.testing.assert_array_equal(
        lpo.drift_apply(params, jnp.zeros(8), jnp.linspace(-2, 2, 8), config=cfg, progress=0.7), 0.0
    )


def test_ta_lpo_reproduces_documented_return():
    name = "ta_lpo/cartpole_cpu"
    _, _, info = pretrained.load_pretrained(name)
    documented = info["check"]["mean_final_return"]
    mean, per_seed = pretrained.evaluate_pretrained(name, num_seeds=4, seed=0)
    np.testing.assert_allclose(mean, documented, rtol=RTOL)


def test_load_run_reads_a_meta_train_workdir(tmp_path):
    """A meta_train.py workdir (params.npz + provenance.json) loads to the same drift, and the
    evaluation stacks it exactly like the shipped copy of the same parameters."""
    from lfx.meta import evaluate  # noqa: PLC0415

    params, cfg, info = pretrained.load_pretrained("ta_lpo/cartpole_cpu")
    np.savez(tmp_path / "params.npz", **{k: np.asarray(v) for k, v in params.items()})
    with pytest.raises(ValueError, match="provenance.json"):
        pretrained.load_run(str(tmp_path))
    (tmp_path / "provenance.json").write_text(json.dumps({"config": info["config"]}))
    p2, cfg2, _ = pretrained.load_run(str(tmp_path))
    assert cfg2 == cfg
    for k in params:
        np.testing.assert_array_equal(p2[k], params[k])
    stacked_run, _ = evaluate.stack_objectives([str(tmp_path)])
    stacked_shipped, _ = evaluate.stack_objectives(["ta_lpo/cartpole_cpu"])
    for a, b in zip(jax.tree.leaves(stacked_run), jax.tree.leaves(stacked_shipped)):
        np.testing.assert_array_equal(a, b)
