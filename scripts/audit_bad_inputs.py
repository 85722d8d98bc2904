"""Drive bad inputs and faults through the experiment scripts and the Python API; tabulate the outcome.

    python scripts/audit_bad_inputs.py                     # every case, ~15-30 min on 2 cores
    python scripts/audit_bad_inputs.py --only=config,api   # some categories
    python scripts/audit_bad_inputs.py --out=docs/reliability_audit.json

Each case runs in a fresh subprocess and is judged on two things:

* **clear error**: the run exits non-zero and its last line is an error of a kind that says what to
  change (ValueError and its subclasses ConfigError / WorkdirError / CheckpointError, lfx's own
  errors, FileNotFoundError, ImportError, absl's flag-parsing error, a script's own `error: ...`
  exit), not a raw KeyError / IndexError / TypeError / ZeroDivisionError / JSONDecodeError /
  TensorStore error from deep inside a library; and its message contains the case's expected phrase.
  Fault cases that must *recover* (a corrupted newest
  checkpoint) instead expect exit 0 and the phrase in the output.
* **data lost**: every file that existed in the case's work directory before the run has the same
  SHA-256 afterwards, and a refused run added nothing to a fresh work directory. For a fault the run
  recovers from, the content of every checkpoint file must still exist afterwards (an unusable
  checkpoint is moved to `checkpoints.unusable/`, never deleted).

The table printed at the end is the one in docs/RELIABILITY.md; rerun this after each family lands.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXP = os.path.join(ROOT, "experiments")
CLEAR = re.compile(
    r"^(?:[\w.]*\.)?(ValueError|ConfigError|WorkdirError|WorkdirLockedError|CheckpointError|"
    r"CheckpointMismatchError|FileNotFoundError|ImportError|ModuleNotFoundError|"
    r"NonFiniteMetricError|FlagsError|IllegalFlagValueError|UnrecognizedFlagError)\b|"
    r"FATAL Flags parsing error|^ERROR: |^error: |Unknown command line flag|^lfx\.[\w.]+Error:"
)


@dataclasses.dataclass
class Case:
    category: str
    name: str
    argv: list[str]                      # the command (python is prepended)
    expect: str                          # phrase the error (or output) must contain
    prepare: Callable[[str], None] | None = None  # fills the workdir before the run
    recover: bool = False                # a fault the run must survive (exit 0)
    timeout: int = 600


def script(name: str, *args: str) -> list[str]:
    """`python experiments/<name> args...`; a `--config=<file>.py:<variant>` is under experiments/configs."""
    args = tuple(
        f"--config={os.path.join(EXP, 'configs', a[len('--config='):])}"
        if a.startswith("--config=") and not os.path.isabs(a[len("--config="):]) else a
        for a in args
    )
    return [os.path.join(EXP, name), *args]


def api(code: str) -> list[str]:
    return ["-c", code]


def _digest(path: str) -> dict[str, str]:
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            if f == ".lock":
                continue
            with open(p, "rb") as fh:
                out[os.path.relpath(p, path)] = hashlib.sha256(fh.read()).hexdigest()
    return out


_EARLIER: dict[str, str] = {}


def earlier_run(name: str, *args: str) -> Callable[[str], None]:
    """Prepare: copy in the workdir of an earlier, finished run of `name` (made once)."""

    def prepare(workdir: str) -> None:
        key = name + " ".join(args)
        if key not in _EARLIER:
            src = tempfile.mkdtemp(prefix="audit_earlier_")
            out = subprocess.run([sys.executable, *script(name, f"--workdir={src}/w", *args)],
                                 capture_output=True, text=True, timeout=900, env=_env())
            if out.returncode != 0:
                raise RuntimeError(f"earlier run of {name} failed:\n{out.stderr[-2000:]}")
            _EARLIER[key] = os.path.join(src, "w")
        shutil.rmtree(workdir)
        shutil.copytree(_EARLIER[key], workdir, ignore=shutil.ignore_patterns(".lock"))

    return prepare


def damage_latest_checkpoint(name: str, *args: str) -> Callable[[str], None]:
    """Prepare: an earlier run killed after two checkpoints, its newest one truncated."""
    base = earlier_run(name, *args)

    def prepare(workdir: str) -> None:
        base(workdir)
        ckpts = os.path.join(workdir, "checkpoints")
        steps = sorted(int(d) for d in os.listdir(ckpts) if d.isdigit())
        meta = os.path.join(ckpts, str(steps[-1]), "state", "_METADATA")
        os.remove(meta)
        os.remove(os.path.join(workdir, "summary.json"))

    return prepare


def garbage_line(file: str, name: str, *args: str) -> Callable[[str], None]:
    base = earlier_run(name, *args)

    def prepare(workdir: str) -> None:
        base(workdir)
        with open(os.path.join(workdir, file), "a") as f:
            f.write("{this is not json\n")

    return prepare


def crafted_pickle(workdir: str) -> None:
    """Prepare: files that run a shell command when unpickled (pickle protocol 0, written by hand)."""
    payload = f"cos\nsystem\n(S'touch {workdir}/PWNED'\ntR.".encode()
    for name in ("lm.npz", "lm.pkl", "params.npz"):
        with open(os.path.join(workdir, name), "wb") as f:
            f.write(payload)


def _env() -> dict[str, str]:
    return {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}


TINY_PPO = ("--config.total_timesteps=4096", "--config.chunk_size=2", "--config.checkpoint_every=2",
            "--config.num_seeds=2", "--noprogress")


def cases() -> list[Case]:
    """The case table, `scripts/audit_cases.py` (it imports this module's helpers by name)."""
    import importlib.util  # noqa: PLC0415

    sys.modules.setdefault("audit_bad_inputs", sys.modules[__name__])
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "audit_cases.py")
    spec = importlib.util.spec_from_file_location("audit_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CASES


def run_case(case: Case) -> dict:
    workdir = tempfile.mkdtemp(prefix="audit_")
    fresh = True
    if case.prepare is not None:
        case.prepare(workdir)
        fresh = False
    before = _digest(workdir)
    argv = [a.replace("{W}", workdir) for a in case.argv]
    if not any(a.startswith("--workdir") for a in argv) and argv[0] != "-c":
        argv.append(f"--workdir={workdir}")
    t0 = time.time()
    try:
        out = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                             timeout=case.timeout, env=_env(), cwd=tempfile.gettempdir())
        code, stdout, stderr = out.returncode, out.stdout, out.stderr
    except subprocess.TimeoutExpired as err:
        code, stdout, stderr = -9, err.stdout or "", (err.stderr or "") + "\nTIMEOUT"
    seconds = time.time() - t0
    after = _digest(workdir)
    lines = [line for line in (stderr or "").strip().splitlines() if line.strip()]
    last = next((line for line in reversed(lines) if not line.startswith(("W", "I0", "I1"))), "")
    text = (stdout or "") + (stderr or "")
    if case.recover:
        clear = code == 0 and case.expect in text
    else:
        clear = code != 0 and bool(CLEAR.search(last) or CLEAR.search(text[-3000:])) \
            and case.expect in text
    if case.recover:  # a recovered run may rewrite metric files; no checkpoint's content may vanish
        kept = set(after.values())
        changed = sorted(k for k in before if k.startswith("checkpoints") and before[k] not in kept)
    else:
        changed = sorted(k for k in before if after.get(k) != before[k])
    added = sorted(set(after) - set(before)) if fresh and not case.recover else []
    pwned = os.path.exists(os.path.join(workdir, "PWNED"))
    lost = bool(changed) or pwned or (bool(added) and not case.recover)
    shutil.rmtree(workdir, ignore_errors=True)
    return {"category": case.category, "case": case.name, "exit": code, "clear_error": clear,
            "data_lost": lost, "changed": changed, "added": added, "executed_code": pwned,
            "last_line": last[-300:], "seconds": round(seconds, 1)}


def main(argv: list[str]) -> int:
    only = next((a.split("=", 1)[1].split(",") for a in argv if a.startswith("--only=")), None)
    out_path = next((a.split("=", 1)[1] for a in argv if a.startswith("--out=")), None)
    selected = [c for c in cases() if only is None or c.category in only]
    results = []
    for i, case in enumerate(selected):
        r = run_case(case)
        results.append(r)
        flag = "ok " if r["clear_error"] and not r["data_lost"] else "BAD"
        print(f"[{i + 1}/{len(selected)}] {flag} {case.category:12s} {case.name:45s} "
              f"exit {r['exit']:>3} {r['seconds']:6.1f}s  {r['last_line'][:110]}", flush=True)
    table: dict[str, list[int]] = {}
    for r in results:
        t = table.setdefault(r["category"], [0, 0, 0])
        t[0] += 1
        t[1] += r["clear_error"]
        t[2] += r["data_lost"]
    print("\n| category | cases | clear error (or recovered) | data lost |\n|---|---|---|---|")
    for cat, (n, ok, lost) in table.items():
        print(f"| {cat} | {n} | {ok} | {lost} |")
    total = [sum(v[i] for v in table.values()) for i in range(3)]
    print(f"| **all** | {total[0]} | {total[1]} | {total[2]} |")
    if out_path:
        with open(out_path, "w") as f:
            json.dump(results, f, indent=1)
    return 0 if total[1] == total[0] and total[2] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
