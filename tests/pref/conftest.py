"""A tiny generated task (a) shared by the lfx.pref tests (generated once per session)."""

import pytest

from lfx.pref import lexicon as lx

TINY = lx.LexiconTaskConfig(num_pretrain_docs=2048, pretrain_steps=300, pretrain_batch=64,
                            num_pairs=256, num_eval_prompts=64, dim=32, hidden_dim=64)


@pytest.fixture(scope="session")
def task(tmp_path_factory):
    """(SFT params, LlamaConfig, PreferenceData, metadata) of the tiny task."""
    path = tmp_path_factory.mktemp("lexicon_tiny")
    lx.generate_task(TINY, lambda n: str(path / n), progress=lambda s: None)
    return lx.load_task(str(path))
