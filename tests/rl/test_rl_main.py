"""The shared RL script body (`lfx.rl.main.build`): every shipped variant of every recipe config
builds and validates, and a run that would evaluate off its chunk grid is refused up front."""

from __future__ import annotations

import pytest

from lfx.experiment.cli import load_config
from lfx.rl import main, ppo, sac

VARIANTS = [(sac, "sac.py", v) for v in ("pendulum", "hopper", "walker2d", "halfcheetah")] + [
    (ppo, "ppo.py", v) for v in ("cartpole", "breakout", "inverted_pendulum", "hopper")]


@pytest.mark.parametrize("module, path, variant", VARIANTS)
def test_shipped_variants_build_and_validate(module, path, variant):
    static, run, hparams, settings, labels = main.build(module, load_config(f"{path}:{variant}"), "")
    assert static.num_updates >= 1 and run.num_seeds >= 1 and len(settings) == len(labels) == 1
    if static.eval_every:
        assert run.chunk_size % static.eval_every == 0


def test_eval_every_must_divide_the_chunk_size():
    config = load_config("sac.py:pendulum")
    config.eval_every = 300  # chunk_size 250
    with pytest.raises(ValueError, match="chunk_size to a multiple of 300"):
        main.build(sac, config, "")
