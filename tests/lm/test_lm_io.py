"""Model files hold no code: .pkl refused unread; bad .npz / LoRA / GGUF files named; ids checked."""

import os
import pickle

import jax
import numpy as np
import pytest

from lfx import lm
from lfx.es.evollm.models import load_language_model
from lfx.lm import ArtifactError, CharTokenizer, WordTokenizer, init_params, tiny_config
from lfx.lm import lora as lora_lib


class _CreatesFile:
    """Loading this .pkl would create `marker` (what a crafted file does with a shell command)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _tiny(tok):
    cfg = tiny_config(tok.vocab_size, dim=16, n_layers=1, n_heads=2, n_kv_heads=1, hidden_dim=32)
    return init_params(jax.random.key(0), cfg), cfg


@pytest.mark.parametrize("name", ["evil.pkl", "evil.npz"])
def test_crafted_pickle_as_lm_path_is_refused_and_never_loaded(tmp_path, name):
    marker = tmp_path / "pwned"
    path = tmp_path / name
    with open(path, "wb") as f:
        pickle.dump({"params": _CreatesFile(str(marker))}, f)
    pickle.loads(pickle.dumps(_CreatesFile(str(tmp_path / "probe"))))  # the payload works ...
    assert (tmp_path / "probe").exists()
    with pytest.raises(ArtifactError, match=r"Python-object file \(\.pkl\).*not read"):
        load_language_model("teacher", str(path))
    with pytest.raises(ArtifactError, match="not read"):
        lm.load_lm(str(path))
    assert not marker.exists()  # ... but lfx never ran it


def test_saved_lm_round_trips_and_missing_arrays_are_named(tmp_path):
    tok = CharTokenizer()
    params, cfg = _tiny(tok)
    npz, side = lm.save_lm(str(tmp_path / "m.npz"), params, cfg, tok, init_seed=3)
    loaded, cfg2, tok2, info = lm.load_lm(npz)
    assert cfg2 == cfg and tok2.chars == tok.chars and info == {"init_seed": 3}
    jax.tree.map(np.testing.assert_array_equal, params, loaded)
    evo = load_language_model("teacher", npz)
    jax.tree.map(np.testing.assert_array_equal, params, evo.params)
    untrained = load_language_model("untrained", npz)  # the init of seed 3, not the file's arrays
    jax.tree.map(np.testing.assert_array_equal, init_params(jax.random.key(3), cfg),
                 untrained.params)
    arrays = dict(np.load(npz))
    del arrays["layers/wq"]
    np.savez(tmp_path / "cut.npz", **arrays)
    os.replace(side, tmp_path / "cut.json")
    with pytest.raises(ArtifactError, match=r"missing arrays \['layers/wq'\]"):
        lm.load_lm(str(tmp_path / "cut.npz"))
    with pytest.raises(ArtifactError, match="no settings file"):
        lm.load_lm(npz)  # its sidecar was moved away


def test_garbage_and_object_npz_files_get_a_clear_error(tmp_path):
    objects = tmp_path / "objects.npz"
    np.savez(objects, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ArtifactError, match="object dtype"):
        lm.load_npz(str(objects))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04" + os.urandom(200))
    with pytest.raises(ArtifactError, match="garbage.npz is not a readable .npz"):
        lm.load_npz(str(garbage))
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(ArtifactError, match="empty"):
        lm.load_npz(str(empty))


def test_lora_file_missing_arrays_names_them(tmp_path):
    tok = CharTokenizer()
    params, _ = _tiny(tok)
    lora = lora_lib.lora_init(jax.random.key(1), params, 2, targets=("wq", "wv"))
    path = str(tmp_path / "adapters.npz")
    lora_lib.save_lora(path, lora, scale=2.0)
    merged = lora_lib.merge_lora_file(params, path)
    jax.tree.map(np.testing.assert_allclose, lora_lib.lora_apply(params, lora, scale=2.0), merged)
    arrays = dict(np.load(path))
    del arrays["wv.b"]
    np.savez(tmp_path / "cut.npz", **arrays)
    with pytest.raises(ArtifactError, match=r"lacks adapter arrays \['wv.b'\]"):
        lora_lib.load_lora(str(tmp_path / "cut.npz"))


def test_decode_refuses_ids_outside_the_vocabulary():
    tok = CharTokenizer()
    for bad in ([-1], [tok.vocab_size], [3, 10**6]):
        with pytest.raises(ValueError, match="outside the vocabulary"):
            tok.decode(bad)
    from lfx.lm.tokenizer import BPETokenizer

    bpe = BPETokenizer(["<|end|>", "a", "b"], [], [3, 1, 1], eos_id=0, pad_id=0)
    assert bpe.decode([1, 2]) == "ab"
    for bad in ([-1], [3]):
        with pytest.raises(ValueError, match="outside the vocabulary"):
            bpe.decode(bad)


def test_empty_foreign_and_truncated_gguf_files_are_named(tmp_path):
    gguf = pytest.importorskip("gguf")
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.gguf is empty"):
        lm.load_gguf(str(empty))
    foreign = tmp_path / "foreign.gguf"
    foreign.write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="foreign.gguf is not a GGUF file"):
        lm.load_smollm2(str(foreign))
    full = tmp_path / "full.gguf"
    w = gguf.GGUFWriter(str(full), "llama")
    w.add_tensor("token_embd.weight", np.ones((64, 32), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    assert len(lm.open_gguf(str(full)).tensors) == 1
    data = full.read_bytes()
    for n in (len(data) // 2, len(data) - 100):
        cut = tmp_path / f"cut{n}.gguf"
        cut.write_bytes(data[:n])
        with pytest.raises(ValueError, match=f"cut{n}.gguf .*truncated"):
            lm.load_gguf(str(cut))


def test_word_tokenizer_model_round_trips_with_its_vocabulary(tmp_path):
    tok = WordTokenizer(("good", "bad", "film"))
    assert tok.encode("film good  bad") == [5, 3, 4] and tok.decode([5, 0, 3, 2]) == "film good"
    with pytest.raises(ValueError, match="'great' is not in the WordTokenizer"):
        tok.encode("great film")
    with pytest.raises(ValueError, match="distinct"):
        WordTokenizer(("a", "a"))
    params, cfg = _tiny(tok)
    npz, _ = lm.save_lm(str(tmp_path / "w.npz"), params, cfg, tok)
    loaded, cfg2, tok2, _ = lm.load_lm(npz)
    assert isinstance(tok2, WordTokenizer) and tok2.words == tok.words and cfg2 == cfg
    jax.tree.map(np.testing.assert_array_equal, params, loaded)
