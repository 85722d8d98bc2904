"""The work directory of a run: an exclusive lock, a configuration fingerprint, nothing overwritten.

    wd = Workdir.open(path or None, run_config, name="ppo_CartPole-v1", resume=flags.resume)

`open` decides, before anything is compiled, whether the run may use the folder:

* a new or empty folder, or one that only holds a failed run's `run.json` (no checkpoints and no
  results): the run starts and `run.json` records its configuration;
* the same configuration with checkpoints: `resume=True` continues it, otherwise it is refused;
* another configuration, or results with no checkpoint to continue from (unless `resume=True` with
  the same configuration: the run then starts again and recomputes them): refused, naming what
  differs, so nothing already saved is lost;
* a `run.json` that is not JSON: refused, naming the file.

While the run lives, `<workdir>/.lock` is held with `fcntl.flock`; a second run on the same folder is
refused with the holder's pid, host, start time and command. `path=None` gives a fresh timestamped
folder `runs/<name>_<YYYYmmdd-HHMMSS>` (suffixed if it exists).

Of several processes of one run (multi-host), one is `primary=True` (jax process 0): it alone takes
the lock and writes. The others open the same folder with `primary=False`: they make the same
checks, read-only, so they take the same decision (or raise the same error), and never write;
`write_json` does nothing there.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
import sys
from typing import Any

RESULT_FILES = ("metrics.jsonl", "metrics.csv", "summary.json", "results.jsonl", "task.json")


class WorkdirError(ValueError):
    """The work directory cannot be used for this run; nothing in it was changed."""


class WorkdirLockedError(WorkdirError):
    """Another live process holds the work directory."""


def jsonable(tree: Any) -> Any:
    """A JSON round trip (tuples -> lists, unknown objects -> str), so saved == recomputed."""
    return json.loads(json.dumps(tree, sort_keys=True, default=str))


def default_workdir(name: str, root: str = "runs") -> str:
    """`runs/<name>_<time>`, with a numeric suffix if two runs start in the same second."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(root, f"{name.replace('/', '_')}_{stamp}")
    path, i = base, 1
    while os.path.exists(path):
        path, i = f"{base}_{i}", i + 1
    return path


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _has_results(path: str) -> list[str]:
    return [f for f in RESULT_FILES if os.path.exists(os.path.join(path, f))
            and os.path.getsize(os.path.join(path, f)) > 0]


class Workdir:
    """An opened, locked work directory. Use `Workdir.open`; call `close()` (or use `with`)."""

    def __init__(self, path: str, run_config: Any, lock_fd: int | None, resuming: bool,
                 primary: bool = True):
        self.path = path
        self.run_config = run_config
        self._lock_fd = lock_fd
        self.resuming = resuming
        self.primary = primary

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def checkpoint_dir(self) -> str:
        return self.file("checkpoints")

    @classmethod
    def open(
        cls, path: str | None, run_config: Any, *, name: str = "run", resume: bool = False,
        has_checkpoints=None, primary: bool | None = None,
    ) -> Workdir:
        """Opens (creating if needed) and locks a work directory for a run; see the module doc.

        Args:
          path: the folder, or None for a fresh `runs/<name>_<time>`.
          run_config: JSON-able description of everything that fixes the run's results.
          name: stem of the default folder name.
          resume: continue the checkpoints of the same configuration.
          has_checkpoints: `f(path) -> bool`; default: a non-empty `checkpoints/` sub-folder.
          primary: False for the non-writing processes of a multi-process run (see the module doc;
            default: whether this is jax process 0):
            no folder is created, no lock taken, no `run.json` written.
        """
        if primary is None:
            import jax  # noqa: PLC0415 (only here: opening a folder needs no device otherwise)

            primary = jax.process_index() == 0
        if resume and path is None:
            raise WorkdirError("--resume needs the --workdir of the run to continue.")
        path = os.path.abspath(path or default_workdir(name))
        if os.path.exists(path) and not os.path.isdir(path):
            raise WorkdirError(f"--workdir {path} exists and is not a folder.")
        lock_fd = None
        if primary:
            os.makedirs(path, exist_ok=True)
            lock_fd = cls._lock(path)
        try:
            config = jsonable(run_config)
            ckpt_dir = os.path.join(path, "checkpoints")
            has_ckpt = (has_checkpoints(path) if has_checkpoints else
                        os.path.isdir(ckpt_dir) and any(d.isdigit() for d in os.listdir(ckpt_dir)))
            results = _has_results(path)
            meta = os.path.join(path, "run.json")
            saved = None
            if os.path.exists(meta):
                try:
                    with open(meta) as f:
                        saved = json.load(f)
                except (json.JSONDecodeError, UnicodeDecodeError) as err:
                    if has_ckpt or results:
                        raise WorkdirError(
                            f"{meta} is not valid JSON ({err}); it records which configuration "
                            f"the checkpoints in {path} belong to. Restore the file, or use another "
                            f"--workdir. Nothing was changed."
                        ) from None
            kept = has_ckpt or bool(results)
            if saved is not None and saved != config and kept:
                diff = _diff_keys(saved, config)
                raise WorkdirError(
                    f"{path} holds a run with a different configuration (differs in "
                    f"{', '.join(diff[:12])}); nothing was changed. Use another --workdir, or the "
                    f"original configuration to resume."
                )
            if has_ckpt and not resume:
                raise WorkdirError(
                    f"{path} already holds checkpoints of this configuration; pass --resume to "
                    f"continue that run, or choose another --workdir. Nothing was changed."
                )
            if results and not has_ckpt and not (resume and saved == config):
                raise WorkdirError(
                    f"{path} holds results ({', '.join(results)}) but no checkpoint to continue "
                    f"from; choose another --workdir so they are not overwritten."
                )
            if saved != config and primary:
                tmp = meta + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(config, f, indent=1, sort_keys=True)
                os.replace(tmp, meta)
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        return cls(path, config, lock_fd, resuming=has_ckpt and resume, primary=primary)

    @staticmethod
    def _lock(path: str) -> int:
        lock_path = os.path.join(path, ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with open(lock_path) as f:
                holder = f.read().strip() or "an unknown process"
            os.close(fd)
            raise WorkdirLockedError(
                f"{path} is in use by another run ({holder}); wait for it to finish or choose "
                f"another --workdir."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }).encode())
        os.fsync(fd)
        return fd

    def close(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Workdir:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write_json(self, name: str, obj: Any) -> str:
        """Writes `<workdir>/<name>` atomically (a temporary file, then a rename); returns its path.

        Only the primary process writes; the others return the path and write nothing.
        """
        path = self.file(name)
        if not self.primary:
            return path
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1, default=str)
        os.replace(tmp, path)
        return path
