"""EvoLLM (Lange, Tian, Tang 2024, arXiv:2402.18381): an LM proposes the next ES mean."""

from lfx.es.evollm.strategy import (
    EvoLLM,
    EvoLLMConfig,
    EvoLLMParams,
    EvoLLMState,
    LanguageModel,
    lfx_lm,
    make_evollm,
)

__all__ = ["EvoLLM", "EvoLLMConfig", "EvoLLMParams", "EvoLLMState", "LanguageModel", "lfx_lm", "make_evollm"]
