"""The flags every experiment script shares, and the sweep grammar.

    FLAGS = cli.define_flags("ppo.py:cartpole", sweep=True)   # at import, in the script
    def main(_):
        c = cli.get_config()            # exits after printing it under --print_config
        wd = cli.open_workdir("ppo_CartPole-v1", run_config)

Flags: `--config` (an ml_collections config file under experiments/configs, `path:variant`; its
fields, listed in `--help`, are set with `--config.<field>=<value>`), `--workdir` (default: a new
`runs/<name>_<time>`), `--resume`, `--print_config`, `--progress`, `--tensorboard`, `--wandb`,
`--shard`, and with `sweep=True` `--sweep="lr=1e-4,1e-3;ent_coef=0,0.01"`. Several processes
(multi-host) are set up by `LFX_DISTRIBUTED=1` at `import lfx`, not by a flag (docs/SCALING.md).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import itertools
import os
import sys
from typing import Any

import jax
from absl import app, flags
from jax.experimental import multihost_utils
from ml_collections import config_flags

from lfx.experiment.config import ConfigError, describe_fields
from lfx.experiment.workdir import Workdir, WorkdirError

CONFIG_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "experiments",
    "configs",
)

FLAGS = flags.FLAGS


def load_config(spec: str):
    """`"file.py:variant"` (relative to experiments/configs, or a path) -> the variant's ConfigDict."""
    path, _, variant = spec.partition(":")
    if not os.path.isabs(path) and not os.path.exists(path):
        path = os.path.join(CONFIG_DIR, path)
    if not os.path.exists(path):
        raise ConfigError(f"No config file {path}.")
    module_spec = importlib.util.spec_from_file_location(
        f"_lfx_config_{os.path.basename(path)[:-3]}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(variant) if variant else module.get_config()


def _config_help(spec: str) -> str:
    try:
        c = load_config(spec)
    except Exception as err:  # noqa: BLE001 (help text only)
        return f"Config file (fields unavailable: {err})."
    path = os.path.join(CONFIG_DIR, spec.partition(":")[0])
    lines = "\n".join("  --" + line for line in describe_fields(c))
    return (f"Config file `path:variant` (default {path}:{spec.partition(':')[2]}). Its fields "
            f"(set with --config.<field>=<value>; defaults of the default variant):\n{lines}")


def define_flags(default_config: str, *, sweep: bool = False, workdir_help: str = ""):
    """Defines the shared flags (see the module doc) in the calling script; returns `FLAGS`."""
    path, _, variant = default_config.partition(":")
    default = os.path.join(CONFIG_DIR, path) + (f":{variant}" if variant else "")
    try:  # config_flags applies --config.<field> overrides from sys.argv right here
        config_flags.DEFINE_config_file("config", default, _config_help(default_config))
    except (AttributeError, KeyError) as err:
        _unknown_field_exit(err, sys.argv, default)
    flags.DEFINE_string("workdir", None, workdir_help or
                        "Output folder (default: a new runs/<name>_<time>). Never overwritten.")
    flags.DEFINE_bool("resume", False, "Continue the run in --workdir from its newest checkpoint.")
    flags.DEFINE_bool("print_config", False, "Print the resolved config and exit.")
    flags.DEFINE_bool("progress", True, "Show a progress bar.")
    flags.DEFINE_bool("tensorboard", False, "Also write TensorBoard summaries (extra 'tensorboard').")
    flags.DEFINE_enum("wandb", "", ["", "offline", "online"],
                      "Also log to Weights & Biases (extra 'wandb'); 'offline' writes locally.")
    flags.DEFINE_bool("shard", False, "Shard the seed axis over all devices; with LFX_DISTRIBUTED=1 "
                      "in the environment, over those of every process (docs/SCALING.md).")
    if sweep:
        flags.DEFINE_string(
            "sweep", "", 'Grid over traced HParams, e.g. "lr=1e-4,2.5e-4;ent_coef=0.0,0.01" '
            "(one vmapped call).")
    # absl's --help lists the main module's key flags: make every shared flag one.
    for name in ("config", "workdir", "resume", "print_config", "progress", "tensorboard", "wandb",
                 "shard") + (("sweep",) if sweep else ()):
        FLAGS.register_key_flag_for_module(sys.argv[0], FLAGS[name])
    return FLAGS


def _unknown_field_exit(err: Exception, argv: list[str], default_spec: str) -> None:
    """Exits with a plain message for an override of a field the config does not have."""
    overrides = [a[2:].split("=", 1)[0] for a in argv[1:] if a.startswith("--config.")]
    spec = next((a.split("=", 1)[1] for a in argv[1:] if a.startswith("--config=")), default_spec)
    try:
        known = [line.split(" = ")[0] for line in describe_fields(load_config(spec))]
    except Exception:  # noqa: BLE001 (the message below still names the field)
        known = []
    name = next((o for o in overrides if o not in known), None)
    if name is None:
        raise err
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join('--' + c for c in close)}?" if close else ""
    sys.stderr.write(f"FATAL Flags parsing error: unknown config field --{name}.{hint} "
                     f"--print_config lists every field.\n")
    sys.exit(1)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parser, with an unknown `--config.<field>` named plainly (with close matches)."""
    try:
        return FLAGS(argv)
    except (AttributeError, KeyError) as err:
        _unknown_field_exit(err, argv, FLAGS["config"].default)


def run(main) -> None:
    """`absl.app.run(main)` with `parse_flags` (use this as every script's last line)."""
    app.run(main, flags_parser=parse_flags)


def get_config():
    """The resolved ConfigDict; under --print_config prints every field and exits."""
    c = FLAGS.config
    if FLAGS.print_config:
        print("\n".join(describe_fields(c)))
        sys.exit(0)
    return c


def open_workdir(name: str, run_config: Any, **kwargs) -> Workdir:
    """`Workdir.open(--workdir, run_config, name=name, resume=--resume)`; prints where it is.

    Of several processes only process 0 is `primary` (locks and writes the folder); they must all
    be given the same `--workdir`, on a filesystem they share.
    """
    if jax.process_count() > 1 and not FLAGS.workdir:
        raise WorkdirError(f"{jax.process_count()} processes (LFX_DISTRIBUTED=1) need one "
                           f"--workdir, the same for all and on a filesystem they share.")
    wd = Workdir.open(FLAGS.workdir, run_config, name=name, resume=FLAGS.resume,
                      primary=jax.process_index() == 0, **kwargs)
    if jax.process_count() > 1:  # every process has checked the folder before anything is written
        multihost_utils.sync_global_devices("lfx.cli.open_workdir")
    print(f"Workdir: {wd.path}" + (" (resuming)" if wd.resuming else ""), flush=True)
    return wd


def parse_sweep(spec: str, hparams_cls: type) -> dict[str, list[float]]:
    """'lr=1e-4,2e-4;ent_coef=0,0.01' -> {'lr': [1e-4, 2e-4], 'ent_coef': [0.0, 0.01]}.

    Refuses a field that is not a traced float of `hparams_cls`, an empty value list, a repeated
    field and a value that is not a finite number.
    """
    grid: dict[str, list[float]] = {}
    fields = sorted(f.name for f in dataclasses.fields(hparams_cls))
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        if "=" not in part:
            raise ConfigError(f"--sweep entry {part!r} must look like name=v1,v2.")
        name, values = (s.strip() for s in part.split("=", 1))
        if name not in fields:
            raise ConfigError(
                f"--sweep: {name!r} is not a traced HParams field; use one of {fields}.")
        if name in grid:
            raise ConfigError(f"--sweep names {name!r} twice; give all its values once: "
                              f"{name}=v1,v2,...")
        items = [v.strip() for v in values.split(",")]
        if not any(items) or not all(items):
            raise ConfigError(f"--sweep: {name!r} needs a comma-separated list of numbers, got "
                              f"{values!r}.")
        try:
            grid[name] = [float(v) for v in items]
        except ValueError as err:
            raise ConfigError(f"--sweep: values of {name!r} must be numbers, got {values!r}.") from err
        if not all(abs(v) < float("inf") for v in grid[name]):
            raise ConfigError(f"--sweep: values of {name!r} must be finite, got {values!r}.")
    return grid


def sweep_settings(base: Any, spec: str) -> tuple[list[Any], list[dict[str, float]], list[str]]:
    """The grid of `--sweep` around `base` HParams: (HParams list, setting dicts, labels)."""
    grid = parse_sweep(spec, type(base))
    base_dict = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    combos = list(itertools.product(*grid.values())) or [()]
    settings = [{**base_dict, **dict(zip(grid, combo))} for combo in combos]
    labels = [", ".join(f"{k}={s[k]:g}" for k in grid) or "default" for s in settings]
    return [type(base)(**s) for s in settings], settings, labels
