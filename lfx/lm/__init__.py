"""Language-model substrate: lfx's Llama (pure functions, KV cache), SmolLM2-135M-Instruct loaded
offline from GGUF, byte-level BPE, character and word tokenizers, batched FSM-constrained generation,
next-token training and LoRA fine-tuning."""

from lfx.lm.char_tokenizer import CharTokenizer
from lfx.lm.config import SMOLLM2_135M, LlamaConfig, tiny_config
from lfx.lm.generate import TokenFSM, generate, left_pad
from lfx.lm.gguf_loader import INSTALL_HINT, load_gguf, load_smollm2, open_gguf, smollm2_path
from lfx.lm.io import ArtifactError, load_lm, load_npz, save_lm
from lfx.lm.llama import (
                          KVCache,
                          apply_rope,
                          attention,
                          cast_params,
                          forward,
                          forward_hidden,
                          init_cache,
                          init_params,
                          output_logits,
                          rms_norm,
                          rope_angles,
)
from lfx.lm.lora import (
                          finetune_lora,
                          finetune_lora_on_targets,
                          load_lora,
                          lora_apply,
                          lora_init,
                          make_lora_step,
                          merge_lora_file,
                          save_lora,
)
from lfx.lm.tokenizer import BPETokenizer
from lfx.lm.train import encode_prompt_target, lm_loss, target_loss, train_lm
from lfx.lm.word_tokenizer import WordTokenizer

__all__ = [
    "ArtifactError", "BPETokenizer", "CharTokenizer", "INSTALL_HINT", "KVCache", "LlamaConfig",
    "SMOLLM2_135M", "TokenFSM", "apply_rope", "attention", "cast_params", "encode_prompt_target",
    "finetune_lora", "finetune_lora_on_targets", "forward", "forward_hidden", "generate",
    "init_cache", "init_params", "left_pad", "lm_loss", "load_gguf", "load_lm", "load_npz",
    "load_lora", "load_smollm2", "lora_apply", "lora_init", "make_lora_step", "merge_lora_file",
    "open_gguf", "output_logits", "rms_norm", "rope_angles", "save_lm", "save_lora",
    "smollm2_path", "target_loss", "tiny_config", "train_lm", "WordTokenizer",
]
