"""GFlowNet recipes: init + chunked run == train, vmap over seeds == a loop, hparam checks, keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfx.gfn import ocgfn
from lfx.gfn.for_game24 import make_game24_train, make_puzzles
from lfx.gfn.for_train import FoRConfig, FoRHParams
from lfx.gfn.hypergrid import make_hypergrid
from lfx.gfn.ocgfn_adapt import AdaptHParams
from lfx.gfn.recipe import iteration_key
from lfx.gfn.train import GFNConfig, GFNHParams, make_train

TINY = GFNConfig(env_kwargs=(("dim", 2), ("height", 8), ("r0", 0.1)), loss="tb", batch_size=4,
                 num_iterations=6, hidden=(16,), eval_every=3, rollout="padded")


def _chunked(recipe, key, hp, sizes, *args):
    state, parts = recipe.init(key, hp, *args), []
    for n in sizes:
        state, m = jax.jit(lambda s, n=n: recipe.run(s, hp, *args, num_updates=n))(state)
        parts.append(m)
    return state, {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


def _assert_same(a, b):
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


@pytest.mark.parametrize("rollout", ["padded", "packed"])
def test_gfn_chunked_run_equals_train(rollout):
    recipe = make_train(TINY.__class__(**{**TINY.__dict__, "rollout": rollout}))
    hp = GFNHParams(epsilon=0.1)
    _, whole = jax.jit(recipe.train)(jax.random.key(1), hp)
    state, parts = _chunked(recipe, jax.random.key(1), hp, (4, 2))
    _assert_same(whole, parts)
    assert int(state.step) == recipe.num_updates == TINY.num_iterations


def test_ocgfn_and_for_chunked_runs_equal_train():
    env, ep = make_hypergrid(2, 4)
    pre = ocgfn.make_train(ocgfn.OCGFNConfig(batch_size=4, num_iterations=5, hidden=(8,),
                                             eval_every=2, eval_batch=8), env, ep)
    _, whole = jax.jit(pre.train)(jax.random.key(2), ocgfn.OCGFNHParams())
    _assert_same(whole, _chunked(pre, jax.random.key(2), ocgfn.OCGFNHParams(), (3, 2))[1])
    fr = make_game24_train(FoRConfig(method="reinforce", batch_size=4, num_iterations=4, hidden=(8,)),
                           make_puzzles(0, 2))
    _, whole = jax.jit(fr.train)(jax.random.key(3), FoRHParams())
    _assert_same(whole, _chunked(fr, jax.random.key(3), FoRHParams(), (1, 3))[1])


def test_vmap_over_seeds_equals_a_loop():
    recipe = make_train(TINY)
    keys = jax.random.split(jax.random.key(4), 3)
    hp = GFNHParams()
    _, mv = jax.jit(jax.vmap(recipe.train, in_axes=(0, None)))(keys, hp)
    single = jax.jit(recipe.train)
    for i in range(3):
        _, m = single(keys[i], hp)
        np.testing.assert_array_equal(mv["train/length"][i], m["train/length"])
        for k in ("train/loss", "eval/tv"):
            np.testing.assert_allclose(mv[k][i], m[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_iteration_key_is_the_single_scan_split():
    # The recipes drew jax.random.split(run_key, num_iterations) before they were chunked; with
    # partitionable threefry fold_in gives the same keys, hence the same results as before.
    run_key = jax.random.split(jax.random.key(9))[1]
    old = jax.random.key_data(jax.random.split(run_key, 50))
    new = jax.random.key_data(jax.vmap(iteration_key, in_axes=(None, 0))(run_key, jnp.arange(50)))
    np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("hp, field", [
    (GFNHParams(lr=0.0), "lr"), (GFNHParams(lr=-1e-3), "lr"), (GFNHParams(lr=float("nan")), "lr"),
    (GFNHParams(logz_lr=float("inf")), "logz_lr"), (GFNHParams(epsilon=1.5), "epsilon"),
    (GFNHParams(epsilon=-0.1), "epsilon"), (GFNHParams(temperature=0.0), "temperature"),
    (ocgfn.OCGFNHParams(epsilon=2.0), "epsilon"), (AdaptHParams(lr=-1.0), "lr"),
    (FoRHParams(epsilon=-1.0), "epsilon"), (FoRHParams(lr=float("nan")), "lr"),
])
def test_out_of_range_hparams_are_refused_naming_the_field(hp, field):
    with pytest.raises(ValueError, match=rf"\.{field}=.*set config\.(hparams|adapt)\.{field}"):
        hp.validate()


def test_valid_and_traced_hparams_pass():
    GFNHParams().validate()
    GFNHParams(epsilon=1.0, temperature=0.5).validate()
    jax.jit(lambda lr: GFNHParams(lr=lr).validate() or lr)(-1.0)  # traced: not checkable, skipped
