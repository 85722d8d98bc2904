"""The code sandbox: statuses, the wall-clock limit, the process-group kill, the write guard."""

import os
import tempfile
import time
import uuid

import pytest

from lfx.pref.sandbox import run_batch, run_tests

ADD = "def f(x):\n    return x + 1\n"


def _gone(pid: int) -> bool:
    """The process no longer runs (a zombie left to an init that does not reap counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_a_correct_function_passes_and_a_wrong_one_fails_test_by_test():
    r = run_tests(ADD, ["assert f(1) == 2", "assert f(5) == 6"])
    assert (r.passed, r.status, r.fraction, r.n_tests) == (True, "passed", 1.0, 2)
    r = run_tests("def f(x):\n    return x\n", ["assert f(1) == 2", "assert f(0) == 0",
                                                 "assert f(1 // 0) == 1"])
    assert (r.passed, r.status, r.n_passed) == (False, "failed", 1)
    assert r.fraction == pytest.approx(1 / 3)
    assert "test 0: AssertionError" in r.stderr and "ZeroDivisionError" in r.stderr
    assert run_tests(ADD, "assert f(1) == 2\nassert f(2) == 3").passed  # one test of two asserts


def test_syntax_errors_and_errors_while_defining_are_reported():
    r = run_tests("def f(x) return x", "assert f(1) == 1")
    assert (r.status, r.fraction) == ("syntax_error", 0.0) and "SyntaxError" in r.stderr
    assert run_tests("def f(x):\n", "assert True").status == "syntax_error"  # IndentationError
    r = run_tests("raise RuntimeError('boom')", "assert True")
    assert r.status == "error" and "boom" in r.stderr
    assert run_tests("import os\nos._exit(3)", "assert True").status == "error"
    assert run_tests("x = bytearray(1 << 30)", "assert True", memory_mb=128).status == "error"
    with pytest.raises(ValueError, match="non-empty list"):
        run_tests(ADD, [])


@pytest.mark.parametrize("code", ["while True:\n    pass\n", "import time\ntime.sleep(100)\n"])
def test_loops_and_sleeps_are_killed_at_the_timeout(code):
    start = time.monotonic()
    r = run_tests(code, "assert True", timeout_s=1.0)
    assert r.status == "timeout" and not r.passed
    assert time.monotonic() - start < 2.0


def test_passed_tests_before_a_timeout_still_count():
    r = run_tests("def f(x):\n    while x > 5:\n        pass\n    return x\n",
                  ["assert f(1) == 1", "assert f(2) == 2", "assert f(9) == 9"], timeout_s=1.0)
    assert r.status == "timeout" and r.n_passed == 2


@pytest.mark.parametrize("parent", ["exits", "sleeps"])
def test_forked_children_are_killed_with_the_program(parent):
    code = ("import os, sys, time\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    time.sleep(100)\n"
            "    os._exit(0)\n"
            "print('CHILD', pid, file=sys.stderr, flush=True)\n"
            + ("time.sleep(100)\n" if parent == "sleeps" else ""))
    start = time.monotonic()
    r = run_tests(code, "assert True", timeout_s=1.0)
    assert time.monotonic() - start < 2.0
    assert r.status == ("timeout" if parent == "sleeps" else "passed")
    pid = int(r.stderr.split("CHILD")[1].split()[0])
    deadline = time.monotonic() + 2
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid)


def test_writes_outside_the_sandbox_folder_are_refused_and_the_folder_is_deleted():
    name = f"lfx_escape_{uuid.uuid4().hex}.txt"
    outside = os.path.join(tempfile.gettempdir(), name)  # the sandbox folder's parent
    for code in (f"open('../{name}', 'w').write('x')", f"open({outside!r}, 'a')",
                 f"import pathlib\npathlib.Path({outside!r}).write_text('x')",
                 f"import os\nos.close(os.open({outside!r}, os.O_CREAT | os.O_WRONLY))",
                 f"import os\nos.symlink({outside!r}, 'link')\nopen('link', 'w')"):
        r = run_tests(code, "assert True")
        assert r.status == "error" and "PermissionError" in r.stderr, (code, r)
        assert not os.path.exists(outside)
    r = run_tests("import os, sys\nprint(os.getcwd(), file=sys.stderr)\n"
                  "open('inside.txt', 'w').write('1')\nassert open('inside.txt').read() == '1'\n"
                  "os.remove('inside.txt')", "assert True")
    assert r.passed
    folder = r.stderr.split()[0]
    assert os.path.basename(folder).startswith("lfx_sandbox_") and not os.path.exists(folder)
    r = run_tests("import os\nos.remove('/etc/hostname')", "assert True")
    assert r.status == "error" and "PermissionError" in r.stderr


@pytest.mark.parametrize("code,what", [
    ("import os\nos.system('true')", "os.system"),
    ("import subprocess\nsubprocess.run(['true'])", "subprocess.Popen"),
    ("import shutil\nshutil.rmtree('.')", "shutil.rmtree"),
    ("import socket\nsocket.socket()", "socket.socket"),
    ("import socket\nsocket.create_connection(('127.0.0.1', 80))", "socket.create_connection"),
])
def test_processes_deletion_and_network_are_refused(code, what):
    r = run_tests(code, "assert True")
    assert r.status == "error" and f"{what} is disabled" in r.stderr


def test_the_environment_is_minimal_and_isolated():
    r = run_tests("import os, sys\nassert 'PYTHONPATH' not in os.environ\n"
                  "assert os.environ['HOME'] == os.getcwd()\nassert sys.flags.isolated\n"
                  "assert sys.stdin is None or sys.stdin.read() == ''", "assert True")
    assert r.passed, r.stderr


def test_run_batch_runs_every_program_in_order():
    codes = [ADD, "def f(x):\n    return x", "def f(x) return", ADD]
    rs = run_batch(codes, ["assert f(1) == 2"] * 4, max_workers=2)
    assert [r.status for r in rs] == ["passed", "failed", "syntax_error", "passed"]
    with pytest.raises(ValueError, match="one test specification per program"):
        run_batch(codes, ["assert True"])
    assert run_batch([], []) == []
