"""The LM training recipe under the shared harness: killed + resumed == uninterrupted == train_lm."""

import jax
import numpy as np

from lfx.experiment import (
    MetricWriter,
    Workdir,
    read_rows,
    recipe_functions,
    run_chunked,
    stack_hparams,
)
from lfx.lm import CharTokenizer, init_params, tiny_config, train_lm
from lfx.lm.train import HParams, TrainConfig, make_train, next_token_loss

TOK = CharTokenizer()
CFG = tiny_config(TOK.vocab_size, dim=16, n_layers=1, n_heads=2, n_kv_heads=1, hidden_dim=32)
STEPS = 12


def _data():
    rng = np.random.default_rng(0)
    tokens = rng.integers(3, TOK.vocab_size, (3, 4, 10)).astype(np.int32)
    tokens[..., -2:] = TOK.pad_id
    return {"tokens": tokens, "mask": tokens != TOK.pad_id}


def _run(path, *, resume=False, stop_after=None):
    recipe = make_train(TrainConfig(num_steps=STEPS), next_token_loss(CFG))
    params0 = init_params(jax.random.key(0), CFG)
    keys = jax.random.key(1)[None]
    hp = stack_hparams([HParams(lr=3e-3), HParams(lr=1e-2)])  # a traced-lr sweep, one program
    init, run = recipe_functions(recipe, keys, hp, params0, None, _data())
    with Workdir.open(str(path), {"lm": 1}, resume=resume) as wd:
        writer = MetricWriter(wd.path, batch_names=("setting", "seed"))
        return run_chunked(init, run, total_updates=STEPS, chunk_size=3, workdir=wd,
                           checkpoint_every=3, writer=writer, progress=False,
                           stop_after=stop_after, progress_metric="train/loss")


def test_killed_then_resumed_lm_training_equals_uninterrupted_and_train_lm(tmp_path):
    full_state, full_metrics = _run(tmp_path / "full")
    _run(tmp_path / "killed", stop_after=6)
    state, metrics = _run(tmp_path / "killed", resume=True)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(full_state.trainable),
                 jax.device_get(state.trainable))
    np.testing.assert_array_equal(full_metrics["train/loss"], metrics["train/loss"])
    assert read_rows(str(tmp_path / "killed" / "metrics.jsonl")) == \
        read_rows(str(tmp_path / "full" / "metrics.jsonl"))
    # the one-call wrapper is the same computation (setting 0: lr 3e-3)
    data = _data()
    params, losses = train_lm(init_params(jax.random.key(0), CFG), CFG, data["tokens"], lr=3e-3,
                              num_steps=STEPS, key=jax.random.key(1), return_losses=True)
    np.testing.assert_allclose(np.asarray(losses), full_metrics["train/loss"][0, 0], rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 jax.device_get(params), jax.tree.map(lambda x: x[0, 0], full_state.trainable))
    # the two learning rates really trained differently
    final = full_metrics["train/loss"][:, 0, -1]
    assert not np.allclose(final[0], final[1])
