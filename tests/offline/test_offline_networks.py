"""lfx.offline.networks: the critic ensemble is N independent MLPs (with and without LayerNorm), the
initialisations follow the references, the Gaussian actor's log-density is NumPy's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.offline.networks import MLP, CriticEnsemble, DeterministicActor, GaussianActor, ValueNet

OBS = jax.random.normal(jax.random.key(1), (5, 3))
ACT = jnp.tanh(jax.random.normal(jax.random.key(2), (5, 2)))


def _member(params, j, layer_norm, depth):
    """Member j of CriticEnsemble's parameters as the parameters of one `MLP(1, ...)`."""
    p = params["params"]
    out = {}
    for i in range(depth + 1):
        out[f"Dense_{i}"] = {k: v[j] for k, v in p[f"EnsembleDense_{i}"].items()}
        if layer_norm and i < depth:
            out[f"LayerNorm_{i}"] = {k: v[j] for k, v in p[f"EnsembleLayerNorm_{i}"].items()}
    return {"params": out}


def test_critic_ensemble_is_n_independent_mlps(layer_norm=True):
    """With LayerNorm (the Dense-only path is the same code with the LayerNorm skipped)."""
    critic = CriticEnsemble(3, (8, 8), layer_norm=layer_norm)
    params = jax.jit(critic.init)(jax.random.key(0), OBS, ACT)
    if layer_norm:  # move LayerNorm off its (ones, zeros) init so it is really compared
        rng = np.random.default_rng(5)
        params = jax.tree.map(lambda x: x + 0.1 * rng.standard_normal(x.shape).astype(np.float32), params)
    q = jax.jit(critic.apply)(params, OBS, ACT)
    assert q.shape == (3, 5)
    mlp = MLP(1, (8, 8), layer_norm=layer_norm)
    x = jnp.concatenate([OBS, ACT], -1)
    apply = jax.jit(mlp.apply)
    for j in range(3):
        np.testing.assert_allclose(np.asarray(q[j]), np.asarray(apply(_member(params, j, layer_norm, 2), x)[:, 0]),
                                   rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(q[0]), np.asarray(q[1]))


def test_member_initialisation_matches_a_single_layer():
    """Each member's kernel has the fan-in of one layer: flax lecun-normal std 1/sqrt(fan_in) (truncated),
    "rebrac" bound 1/sqrt(fan_in), not the fan-in times N."""
    params = jax.jit(CriticEnsemble(64, (256,)).init)(jax.random.key(0), jnp.zeros(3), jnp.zeros(2))["params"]
    std = float(jnp.std(params["EnsembleDense_1"]["kernel"]))  # [64, 256, 1]
    assert std == pytest.approx(1 / np.sqrt(256), rel=0.05)
    init = jax.jit(CriticEnsemble(4, (256,), initializer="rebrac").init)
    params = init(jax.random.key(0), jnp.zeros(3), jnp.zeros(2))["params"]
    k = params["EnsembleDense_0"]["kernel"]  # [4, 5, 256]: U(+-1/sqrt(5))
    assert float(jnp.max(jnp.abs(k))) <= 1 / np.sqrt(5)
    assert float(jnp.max(jnp.abs(k))) > 0.9 / np.sqrt(5)
    np.testing.assert_allclose(np.asarray(params["EnsembleDense_0"]["bias"]), 0.1, rtol=1e-6)
    assert float(jnp.max(jnp.abs(params["EnsembleDense_1"]["kernel"]))) <= 3e-3


def test_gaussian_actor_log_prob_is_numpy_normal_with_clipped_log_std():
    actor = GaussianActor(2, (8,), log_std_min=-5.0, log_std_max=2.0)
    params = jax.jit(actor.init)(jax.random.key(0), OBS)
    params["params"]["log_std"] = jnp.array([-7.0, 0.3])  # the first is clipped to -5
    pi = jax.jit(actor.apply)(params, OBS)
    mean = np.asarray(pi.mean, np.float64)
    raw = jax.jit(MLP(2, (8,)).apply)({"params": params["params"]["mlp"]}, OBS)
    np.testing.assert_allclose(mean, np.tanh(np.asarray(raw, np.float64)), rtol=1e-5)
    std = np.exp([-5.0, 0.3])
    a = np.asarray(ACT, np.float64)
    expected = np.sum(-0.5 * ((a - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi), axis=-1)
    np.testing.assert_allclose(np.asarray(pi.log_prob(ACT)), expected, rtol=1e-4)
    np.testing.assert_array_equal(np.asarray(pi.mode()), np.asarray(pi.mean))


def test_actor_and_value_shapes_and_bounds():
    actor = DeterministicActor(2, (8, 8), layer_norm=True)
    a = jax.jit(lambda k, x: actor.apply(actor.init(k, x), 10.0 * x))(jax.random.key(0), OBS)
    assert a.shape == (5, 2) and float(jnp.max(jnp.abs(a))) <= 1.0
    value = ValueNet((8, 8))
    assert jax.eval_shape(lambda k: value.apply(value.init(k, OBS), OBS), jax.random.key(0)).shape == (5,)
    with pytest.raises(ValueError, match="initializer"):
        MLP(1, (8,), initializer="torch").init(jax.random.key(0), OBS)
