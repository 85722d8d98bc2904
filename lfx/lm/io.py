"""Model files that hold no code: arrays in an `.npz` (no object arrays), settings in JSON.

A Python-object file (`.pkl`) runs code when it is loaded, so lfx never loads one (issue 21). A
trained small LM is two files side by side:

    <stem>.npz   its parameters, one array per leaf ("embed", "final_norm", "layers/wq", ...)
    <stem>.json  {"format": "lfx.lm/1", "config": LlamaConfig fields, "tokenizer": {"kind": "char",
                 "chars": ...} or {"kind": "word", "words": [...]}, "info": {...}}

`load_npz` is the one reader of `.npz` files in lfx (LM parameters, LoRA adapters): it checks the
file's first bytes (a zip archive; a `.pkl` is named as such and refused unread), loads with
NumPy's default that refuses object arrays, and turns NumPy's and zipfile's errors into an
`ArtifactError` naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lfx.lm.char_tokenizer import CharTokenizer
from lfx.lm.config import LlamaConfig
from lfx.lm.word_tokenizer import WordTokenizer

FORMAT = "lfx.lm/1"
_ZIP_MAGIC = b"PK\x03\x04"
_PY_OBJECT_PROTOCOL_BYTE = 0x80  # first byte of a protocol-2+ .pkl stream


class ArtifactError(ValueError):
    """A model or adapter file that cannot be used; the message names the file and what is wrong."""


def _refuse_unless_npz(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(f"No {what} at {path!r}.")
    with open(path, "rb") as f:
        head = f.read(4)
    if head == _ZIP_MAGIC:
        return
    if head[:1] and head[0] == _PY_OBJECT_PROTOCOL_BYTE or path.endswith(".pkl"):
        raise ArtifactError(
            f"{path} is a Python-object file (.pkl); lfx never loads those (loading one can run "
            f"arbitrary code), so it was not read. Re-create the {what} with the current lfx (it "
            f"writes an .npz of arrays and a .json of settings), e.g. `python "
            f"experiments/evollm_teacher.py`."
        )
    if not head:
        raise ArtifactError(f"{path} is empty; expected a {what} (.npz archive).")
    raise ArtifactError(f"{path} is not an .npz archive (it starts with {head!r}); expected a "
                        f"{what}.")


def load_npz(path: str, what: str = "array file") -> dict[str, np.ndarray]:
    """All arrays of an `.npz` file, read without object arrays (NumPy's default refuses them).

    Raises:
      FileNotFoundError: no file.
      ArtifactError: a `.pkl` (refused unread), an empty, truncated or non-zip file, or an archive
        holding object arrays.
    """
    _refuse_unless_npz(path, what)
    try:
        with np.load(path) as f:  # object arrays raise ValueError
            return {name: np.asarray(f[name]) for name in f.files}
    except ValueError as err:  # NumPy: "Object arrays cannot be loaded when ..."
        raise ArtifactError(
            f"{path} contains Python-object (object dtype) arrays, which lfx does not load; a "
            f"{what} holds numeric arrays only ({err})."
        ) from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as err:
        raise ArtifactError(
            f"{path} is not a readable .npz archive (truncated or corrupt?): "
            f"{type(err).__name__}: {err}"
        ) from None


def save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Writes `arrays` to exactly `path` (no ".npz" appended), atomically (temporary + rename)."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
    os.replace(tmp, path)


def _flat(params: dict, prefix: str = "") -> dict[str, np.ndarray]:
    out = {}
    for k, v in params.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _nest(flat: dict[str, Any]) -> dict:
    out: dict = {}
    for k, v in flat.items():
        node = out
        *parents, leaf = k.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def sidecar_path(path: str) -> str:
    """`<stem>.json` beside `<stem>.npz`."""
    stem = path[:-4] if path.endswith(".npz") else path
    return stem + ".json"


def _tokenizer_meta(tokenizer: CharTokenizer | WordTokenizer) -> dict:
    if isinstance(tokenizer, CharTokenizer):
        return {"kind": "char", "chars": tokenizer.chars}
    if isinstance(tokenizer, WordTokenizer):
        return {"kind": "word", "words": list(tokenizer.words)}
    raise TypeError(f"save_lm stores CharTokenizer or WordTokenizer models, got "
                    f"{type(tokenizer).__name__}.")


def _tokenizer_from_meta(meta: dict) -> CharTokenizer | WordTokenizer:
    kind = meta.get("kind")
    if kind == "char":
        return CharTokenizer(meta["chars"])
    if kind == "word":
        return WordTokenizer(meta["words"])
    raise ValueError(f"tokenizer kind {kind!r} (only 'char' and 'word' are stored)")


def save_lm(path: str, params: dict, config: LlamaConfig, tokenizer: CharTokenizer | WordTokenizer,
            **info: Any) -> tuple[str, str]:
    """Writes a small LM as `path` (.npz of float arrays) and its `.json` sidecar.

    Args:
      path: the `.npz` file (".npz" is required, so the sidecar's name is unambiguous).
      params: `lfx.lm.init_params`-shaped parameters.
      config: its LlamaConfig.
      tokenizer: a CharTokenizer or WordTokenizer (its characters / words are stored).
      info: JSON-serialisable notes (training data, steps, seed).

    Returns:
      (npz path, json path).
    """
    if not path.endswith(".npz"):
        raise ValueError(f"LM files end in .npz, got {path!r}.")
    tok_meta = _tokenizer_meta(tokenizer)
    save_npz(path, _flat(jax.tree.map(np.asarray, params)))  # save_npz makes them arrays
    meta = {"format": FORMAT, "config": dataclasses.asdict(config),
            "tokenizer": tok_meta, "info": info}
    side = sidecar_path(path)
    tmp = side + ".tmp"
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1, default=str)
    os.replace(tmp, side)
    return path, side


def _read_sidecar(path: str) -> dict:
    side = sidecar_path(path)
    if not os.path.exists(side):
        raise ArtifactError(f"{path} has no settings file {side} beside it (the LlamaConfig and "
                            f"tokenizer of the model); both are written by lfx.lm.save_lm.")
    try:
        with open(side) as f:
            meta = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{side} is not valid JSON ({err}).") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ArtifactError(f"{side} is not an lfx LM settings file (format "
                            f"{meta.get('format') if isinstance(meta, dict) else None!r}, "
                            f"expected {FORMAT!r}).")
    return meta


def load_lm(path: str) -> tuple[dict, LlamaConfig, CharTokenizer | WordTokenizer, dict]:
    """(params, config, tokenizer, info) of a `save_lm` file; no Python object is loaded.

    Raises:
      FileNotFoundError: no file.
      ArtifactError: a `.pkl`, a corrupt archive, a missing/invalid sidecar, or arrays that do not
        fit the config (missing or extra names, wrong shapes) -- named in the message.
    """
    arrays = load_npz(path, "LM parameter file")
    meta = _read_sidecar(path)
    side = sidecar_path(path)
    try:
        config = LlamaConfig(**meta["config"])
        tokenizer = _tokenizer_from_meta(meta["tokenizer"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ArtifactError(f"{side}: unusable settings ({type(err).__name__}: {err}).") from None
    from lfx.lm.llama import init_params  # noqa: PLC0415

    like = _flat(jax.eval_shape(lambda: init_params(jax.random.key(0), config)))
    missing = sorted(set(like) - set(arrays))
    extra = sorted(set(arrays) - set(like))
    if missing or extra:
        raise ArtifactError(
            f"{path} does not hold the parameters its settings describe: missing arrays "
            f"{missing or 'none'}, unexpected arrays {extra or 'none'}."
        )
    for name, ref in like.items():
        if tuple(arrays[name].shape) != tuple(ref.shape):
            raise ArtifactError(f"{path}: array {name!r} has shape {arrays[name].shape}, the "
                                f"config in {side} needs {tuple(ref.shape)}.")
        if not np.issubdtype(arrays[name].dtype, np.floating):
            raise ArtifactError(f"{path}: array {name!r} has dtype {arrays[name].dtype}, expected "
                                f"floats.")
    params = _nest({k: jnp.asarray(v) for k, v in arrays.items()})
    return params, config, tokenizer, dict(meta.get("info", {}))
