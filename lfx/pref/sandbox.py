"""Runs model-generated Python code against tests in a subprocess with time and memory limits.

The execution reward of code-generation RLHF (PF-PPO, "Policy Filtration in RLHF to Fine-Tune LLM
for Code Generation", Shen et al. 2024, arXiv:2409.06957: a response is rewarded by the unit tests
it passes), following OpenAI's human-eval `execution.py` (Chen et al. 2021, arXiv:2107.03374).

    run_tests(code, tests) -> SandboxResult(passed, fraction, status, stderr, n_passed, n_tests)

`code` is executed once, then every test (a string of Python, typically one `assert`) is executed
in the same globals one by one: fraction = (tests that ran without raising) / len(tests), passed =
every test ran. status is one of

    "passed"        every test ran without raising
    "failed"        the code ran but some test raised (AssertionError or any other exception)
    "syntax_error"  the code does not compile (IndentationError included)
    "error"         the code raised while being defined, or the interpreter died (os._exit,
                    a resource limit, a signal other than the CPU limit's)
    "timeout"       the wall-clock limit `timeout_s` (or the CPU limit) was reached

How it runs: a fresh interpreter (`sys.executable -I -S`: isolated, no site-packages) in a fresh
`tempfile.TemporaryDirectory()` as cwd (deleted afterwards), a minimal environment (no PYTHONPATH,
HOME = the temp dir), stdin closed, stdout discarded, stderr kept (its tail is returned), in a new
session (its own process group). The runner sets, before reading the code, RLIMIT_CPU (ceil(
timeout_s) + 1 s), RLIMIT_AS (`memory_mb`), RLIMIT_FSIZE (1 MiB), RLIMIT_CORE (0) and, when not
root (root is exempt from it), RLIMIT_NPROC (the user's process count + 32). The limits are set by
the runner itself rather than in Popen's `preexec_fn`, which CPython documents as unsafe in a
process with threads (JAX's runtime, `run_batch`'s pool); this also lets Popen use vfork. When the
program exits or the wall-clock limit passes, the whole process group is SIGKILLed, so forked
children that sleep die too (a child that calls `setsid` itself escapes; the CPU limit still
bounds it).

Then a prelude ("reliability guard", after human-eval's `reliability_guard`) runs before the code:
`open`/`io.open`/`os.open` for writing, `os.remove`/`unlink`/`rmdir`/`rename`/`replace`/
`truncate`/`chmod`/`chown`/`link`/`symlink` refuse paths whose realpath is outside the temp dir;
`os.system`, `os.popen`, `os.exec*`, `os.spawn*`, `os.posix_spawn*`, `os.kill`, `os.killpg`,
`subprocess.Popen` (hence `subprocess.run` and friends), `shutil.rmtree`/`move`/`chown` and
`socket` sockets raise PermissionError (the last three patched when first imported);
`resource`, `ctypes`, `psutil` cannot be imported.
`os.fork` stays allowed (the process group is killed afterwards).

WARNING: this is NOT a security sandbox. It is a best-effort guard against model-generated code
that is careless (deletes files, writes outside its folder, loops forever) in research on small
synthetic tasks, exactly as human-eval's guard; deliberately malicious code gets around it (the
`posix` module, `__import__` tricks, `setsid`, ...). Run untrusted code in a real sandbox (a
container or VM without network and with a read-only file system).
"""

from __future__ import annotations

import dataclasses
import marshal
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

STATUSES = ("passed", "failed", "timeout", "error", "syntax_error")
FILE_LIMIT_BYTES = 1 << 20
STDERR_TAIL = 2000
_RUNNER, _PAYLOAD, _RESULT, _STDERR = "_runner.py", "_payload.marshal", "_result.txt", "_stderr.txt"


@dataclasses.dataclass(frozen=True)
class SandboxResult:
    """The outcome of one `run_tests` (see the module doc for `status`)."""

    passed: bool
    fraction: float
    status: str
    stderr: str = ""
    n_passed: int = 0
    n_tests: int = 0
    seconds: float = 0.0


# The program the fresh interpreter runs (cwd = the temp dir). Limits first, then the payload, then
# the guard, then the code and the tests; progress goes to _RESULT one JSON line at a time, so a
# run killed by the timeout still reports the tests that passed before it.
_RUNNER_SOURCE = r'''
import marshal, os, sys


def _limits(lim):
    import resource

    def cap(kind, value):
        try:
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):
            try:  # the hard limit is already lower: keep it
                hard = resource.getrlimit(kind)[1]
                resource.setrlimit(kind, (hard, hard))
            except (ValueError, OSError):
                pass

    cap(resource.RLIMIT_CPU, lim["cpu_s"])
    cap(resource.RLIMIT_AS, lim["memory_bytes"])
    cap(resource.RLIMIT_FSIZE, lim["file_bytes"])
    cap(resource.RLIMIT_CORE, 0)
    if os.getuid() != 0:  # RLIMIT_NPROC counts all the user's processes (root is exempt)
        uid, n = os.getuid(), 0
        for d in os.listdir("/proc"):
            try:
                n += d.isdigit() and os.stat("/proc/" + d).st_uid == uid
            except OSError:
                pass
        cap(resource.RLIMIT_NPROC, n + 32)


class _PatchOnImport:
    # A meta-path finder that patches a module right after it is first imported (importing
    # subprocess, socket and shutil up front would double the interpreter's start-up time).
    def __init__(self, patches):
        self.patches = patches

    def find_spec(self, name, path=None, target=None):
        if name not in self.patches:
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
        else:
            return None
        loader, patch = spec.loader, self.patches[name]

        class Loader:
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                patch(module)

        spec.loader = Loader()
        return spec


def _guard(root):
    import builtins, io

    def inside(path):
        try:
            p = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return p == root or p.startswith(root + os.sep)

    def check(path, what):
        if isinstance(path, int) or not inside(path):
            raise PermissionError(f"sandbox: {what} outside the sandbox folder is disabled: {path!r}")

    def refuse(name):
        def refused(*args, **kwargs):
            raise PermissionError(f"sandbox: {name} is disabled")
        return refused

    real_open = builtins.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if not isinstance(file, int) and any(c in mode for c in "wax+"):
            check(file, "open for writing")
        return real_open(file, mode, *args, **kwargs)

    builtins.open = io.open = guarded_open
    real_os_open = os.open
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & write_flags:
            if kwargs.get("dir_fd") is not None or len(args) > 1:
                raise PermissionError("sandbox: os.open for writing with dir_fd is disabled")
            check(path, "os.open for writing")
        return real_os_open(path, flags, *args, **kwargs)

    os.open = guarded_os_open

    def one_path(name):
        real = getattr(os, name)

        def guarded(path, *args, **kwargs):
            check(path, "os." + name)
            return real(path, *args, **kwargs)
        return guarded

    def two_paths(name):
        real = getattr(os, name)

        def guarded(src, dst, *args, **kwargs):
            check(src, "os." + name)
            check(dst, "os." + name)
            return real(src, dst, *args, **kwargs)
        return guarded

    for name in ("remove", "unlink", "rmdir", "removedirs", "truncate", "chmod", "chown",
                 "lchown", "mkdir", "makedirs", "mkfifo"):
        if hasattr(os, name):
            setattr(os, name, one_path(name))
    for name in ("rename", "renames", "replace", "link", "symlink"):
        setattr(os, name, two_paths(name))
    for name in ("system", "popen", "kill", "killpg", "chroot", "fchmod", "fchown", "setuid",
                 "posix_spawn", "posix_spawnp", "forkpty", "putenv", "execv", "execve", "execl",
                 "execle", "execlp", "execlpe", "execvp", "execvpe", "spawnl", "spawnle",
                 "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe"):
        if hasattr(os, name):
            setattr(os, name, refuse("os." + name))

    def patch_shutil(m):
        for name in ("rmtree", "move", "chown"):
            setattr(m, name, refuse("shutil." + name))

    def patch_subprocess(m):
        m.Popen = refuse("subprocess.Popen")  # run, call, check_output, ... create a Popen

    def patch_socket(m):
        for name in ("socket", "socketpair", "fromfd", "create_connection", "create_server"):
            if hasattr(m, name):
                setattr(m, name, refuse("socket." + name))
        sys.modules["_socket"].socket = refuse("socket.socket")

    sys.meta_path.insert(0, _PatchOnImport({"shutil": patch_shutil, "subprocess": patch_subprocess,
                                            "socket": patch_socket}))
    builtins.exit = builtins.quit = refuse("exit")
    builtins.help = refuse("help")
    for name in ("resource", "ctypes", "_ctypes", "psutil", "tkinter"):
        sys.modules[name] = None


def _main():
    with open("_payload.marshal", "rb") as f:
        payload = marshal.load(f)
    _limits(payload["limits"])
    out = open("_result.txt", "w")
    exit_, write = os._exit, sys.stderr.write

    def emit(line):
        out.write(line + "\n")
        out.flush()

    def describe(e):
        if isinstance(e, SyntaxError):
            return f"{type(e).__name__}: {e.msg} (line {e.lineno}: {(e.text or '').strip()!r})"
        return (f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)[:500]

    _guard(os.path.realpath(os.getcwd()))
    try:
        code = compile(payload["code"], "<solution>", "exec")
    except (SyntaxError, ValueError) as e:
        write(describe(e) + "\n")
        emit("syntax_error")
        exit_(0)
    scope = {"__name__": "__sandbox__"}
    try:
        exec(code, scope)
    except BaseException as e:
        write(describe(e) + "\n")
        emit("error")
        exit_(0)
    for i, test in enumerate(payload["tests"]):
        try:
            exec(compile(test, f"<test {i}>", "exec"), scope)
            emit(f"ok {i}")
        except BaseException as e:
            write(f"test {i}: {describe(e)}\n")
            emit(f"fail {i}")
    emit("done")
    sys.stderr.flush()
    exit_(0)


_main()
'''


def _as_tests(tests: str | Sequence[str]) -> list[str]:
    if isinstance(tests, str):
        tests = [tests]
    tests = list(tests)
    if not tests or not all(isinstance(t, str) for t in tests):
        raise ValueError(f"tests must be a string or a non-empty list of strings, got {tests!r:.80}.")
    return tests


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_tests(code: str, tests: str | Sequence[str], *, timeout_s: float = 2.0,
              memory_mb: int = 256) -> SandboxResult:
    """Runs `code` then each of `tests` in a fresh guarded interpreter (see the module doc).

    Args:
      code: Python source (a function definition, say).
      tests: one test (a string) or a list run one by one in the code's globals (`assert f(1) == 2`).
      timeout_s: wall-clock limit of the whole run, interpreter start included.
      memory_mb: the address-space limit (RLIMIT_AS) of the interpreter.
    Raises:
      ValueError: no tests, a non-string test or code, or a non-positive limit.
    """
    if not isinstance(code, str):
        raise ValueError(f"code must be a string, got {type(code).__name__}.")
    tests = _as_tests(tests)
    if not timeout_s > 0 or memory_mb < 16:
        raise ValueError(f"timeout_s must be > 0 and memory_mb >= 16, got {timeout_s}, {memory_mb}.")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lfx_sandbox_", ignore_cleanup_errors=True) as tmp:
        limits = {"cpu_s": math.ceil(timeout_s) + 1, "memory_bytes": int(memory_mb) << 20,
                  "file_bytes": FILE_LIMIT_BYTES}
        with open(os.path.join(tmp, _PAYLOAD), "wb") as f:
            marshal.dump({"code": code, "tests": tests, "limits": limits}, f)
        with open(os.path.join(tmp, _RUNNER), "w") as f:
            f.write(_RUNNER_SOURCE)
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
        timed_out = False
        with open(os.path.join(tmp, _STDERR), "wb") as err:
            proc = subprocess.Popen([sys.executable, "-I", "-S", _RUNNER], cwd=tmp, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err, start_new_session=True, close_fds=True)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc.pid)  # the program's children too (the group outlives its leader)
                proc.wait()
        with open(os.path.join(tmp, _STDERR), errors="replace") as f:
            stderr = f.read()[-STDERR_TAIL:]
        with open(os.path.join(tmp, _RESULT), errors="replace") as f:
            records = [line.rstrip("\n") for line in f if line.endswith("\n")]
    n_passed, n = len({r for r in records if r.startswith("ok ")}), len(tests)
    done = "done" in records
    if timed_out or proc.returncode == -signal.SIGXCPU:
        status = "timeout"
    elif "syntax_error" in records:
        status = "syntax_error"
    elif not done or "error" in records:
        status = "error"
        if not done and not stderr:
            stderr = f"sandbox: the interpreter exited with code {proc.returncode} before the end."
    else:
        status = "passed" if n_passed == n else "failed"
    return SandboxResult(passed=status == "passed", fraction=n_passed / n, status=status,
                         stderr=stderr, n_passed=n_passed, n_tests=n,
                         seconds=time.monotonic() - start)


def run_batch(codes: Sequence[str], tests: Sequence[str | Sequence[str]], *,
              timeout_s: float = 2.0, memory_mb: int = 256,
              max_workers: int | None = None) -> list[SandboxResult]:
    """`run_tests(codes[i], tests[i])` for every i, in parallel subprocesses (a thread pool).

    Args:
      codes: N programs.
      tests: N test specifications (each a string or a list of strings), one per program.
      max_workers: concurrent interpreters; default the number of CPU cores.
    Raises:
      ValueError: len(codes) != len(tests).
    """
    codes, tests = list(codes), list(tests)
    if len(codes) != len(tests):
        raise ValueError(f"run_batch needs one test specification per program; got {len(codes)} "
                         f"programs and {len(tests)} test specifications.")
    if not codes:
        return []
    workers = max(1, min(len(codes), max_workers or os.cpu_count() or 1))
    run = lambda c, t: run_tests(c, t, timeout_s=timeout_s, memory_mb=memory_mb)
    if workers == 1:
        return [run(c, t) for c, t in zip(codes, tests)]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lfx_sandbox") as pool:
        return list(pool.map(run, codes, tests))
