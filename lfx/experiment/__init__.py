"""The spine every family shares: config translation, work directories, the harness, metrics.

* `lfx.experiment.config`: frozen dataclasses are the truth; ConfigDicts derived and turned back.
* `lfx.experiment.workdir`: lock, configuration fingerprint, nothing overwritten.
* `lfx.experiment.checkpoint`: orbax checkpoints checked before compiling, fallback to the previous.
* `lfx.experiment.harness`: `run_chunked` (recipe runs), `CellLog` (grids of cells), `RunConfig`.
* `lfx.experiment.metrics`: one row per (setting, seed, update); TensorBoard / W&B writers.
* `lfx.experiment.stats`: IQM and stratified-bootstrap intervals (rliable's estimators).
* `lfx.experiment.cli`: the flags every experiment script shares, the `--sweep` grammar.

See docs/ARCHITECTURE.md for the recipe protocol these pieces serve.
"""

from lfx.experiment.checkpoint import CheckpointError, Checkpoints
from lfx.experiment.config import ConfigError, from_configdict, to_configdict
from lfx.experiment.harness import (
    CellLog,
    NonFiniteMetricError,
    RunConfig,
    check_finite_hparams,
    recipe_functions,
    run_chunked,
    stack_hparams,
)
from lfx.experiment.metrics import MetricWriter, read_rows
from lfx.experiment.workdir import Workdir, WorkdirError, WorkdirLockedError

__all__ = [
    "CellLog", "CheckpointError", "Checkpoints", "ConfigError", "MetricWriter",
    "NonFiniteMetricError", "RunConfig", "Workdir", "WorkdirError", "WorkdirLockedError",
    "check_finite_hparams", "from_configdict", "read_rows", "recipe_functions", "run_chunked",
    "stack_hparams", "to_configdict",
]
