"""Two processes on localhost (jax.distributed + gloo CPU collectives) reproduce a one-process run.

Each process has 2 fake CPU devices; the 4 PPO seeds are sharded over the 4 global devices, and the
seed-mean of the returns is a cross-process all-reduce. Each process saves the shards it holds and
`parallel.allgather` of the whole result; their union must equal the same computation in one
process on one device.

The script path: `experiments/ppo.py --shard` under `LFX_DISTRIBUTED=1` in two processes sharing one
`--workdir` writes exactly the files of one process on 4 devices (process 0 alone writes), and two
processes killed after a checkpoint and resumed end with the same files again.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ~20 s of CPU per process; the rest is headroom for a loaded machine. A hang fails here.
TIMEOUT_S = 600

SCRIPT = textwrap.dedent(
    """
    import sys
    import jax, jax.numpy as jnp, numpy as np
    from lfx import parallel

    out, rest = sys.argv[1], sys.argv[2:]
    if rest:  # a worker: coordinator address and process id
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # jax 0.10's default
        parallel.initialize_distributed(
            coordinator_address=rest[0], num_processes=2, process_id=int(rest[1]),
            initialization_timeout=120)
        assert jax.process_count() == 2 and jax.device_count() == 4, jax.devices()
    # Only now: importing gymnax (via lfx.envs) creates jax arrays, which starts the backend.
    from lfx.rl import ppo

    cfg = ppo.PPOConfig(num_envs=4, num_steps=32, total_timesteps=2048, num_minibatches=2,
                        update_epochs=2)
    recipe = ppo.make_ppo(cfg)

    @jax.jit
    def population(keys):
        state, metrics = jax.vmap(recipe.train, in_axes=(0, None))(keys, ppo.HParams())
        returns = metrics["train/episode_return"]  # [S, T]
        sq_norm = sum(jnp.sum(p.reshape(p.shape[0], -1) ** 2, 1)
                      for p in jax.tree.leaves(state.params))  # [S]
        return {"returns": returns, "sq_norm": sq_norm, "mean_returns": returns.mean(0)}

    keys = jax.random.split(jax.random.key(0), 4)
    if rest:
        keys = parallel.shard_population(keys, parallel.make_mesh())
    res = population(keys)
    save = {k: np.asarray(v) for k, v in parallel.allgather(res).items()}
    save["keys"] = parallel.allgather(keys)  # typed keys: placed and gathered as key data
    save["process_index"] = np.asarray(jax.process_index())
    if rest:
        assert not res["returns"].is_fully_addressable
        assert res["mean_returns"].is_fully_replicated  # the all-reduce's output, on every device
        save["mean_local"] = np.asarray(res["mean_returns"].addressable_data(0))
        for name in ("returns", "sq_norm"):
            shards = res[name].addressable_shards
            save[name + "_rows"] = np.concatenate(
                [np.arange(4)[s.index[0]] for s in shards])
            save[name + "_shards"] = np.concatenate([np.asarray(s.data) for s in shards])
    np.savez(out, **save)
    print("DONE", jax.process_index(), flush=True)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args, devices: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "PYTHONPATH": ROOT,
    }
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_processes_equal_one(tmp_path):
    address = f"127.0.0.1:{_free_port()}"
    paths = [tmp_path / f"{name}.npz" for name in ("p0", "p1", "ref")]
    procs = [
        _start([paths[0], address, 0], devices=2),
        _start([paths[1], address, 1], devices=2),
        _start([paths[2]], devices=1),
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=TIMEOUT_S)[0])
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"a process ran past {TIMEOUT_S} s (hung collective?): {logs}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-4000:]

    workers = [np.load(paths[i]) for i in range(2)]
    ref = np.load(paths[2])
    assert [int(w["process_index"]) for w in workers] == [0, 1]
    for name in ("returns", "sq_norm"):
        # The shards held by the two processes are disjoint and together are the whole result.
        rows = np.concatenate([w[name + "_rows"] for w in workers])
        assert sorted(rows.tolist()) == [0, 1, 2, 3], rows
        union = np.empty_like(ref[name])
        for w in workers:
            union[w[name + "_rows"]] = w[name + "_shards"]
        np.testing.assert_allclose(union, ref[name], rtol=1e-5, atol=1e-6, err_msg=name)
        for w in workers:
            np.testing.assert_allclose(w[name], ref[name], rtol=1e-5, atol=1e-6, err_msg=name)
    for w in workers:
        np.testing.assert_allclose(w["mean_local"], ref["mean_returns"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(w["mean_returns"], ref["mean_returns"], rtol=1e-5, atol=1e-6)
    for w in workers:
        np.testing.assert_array_equal(w["keys"], ref["keys"])
    # Seeds differ, so a worker that ran only its own seeds (no real sharding) could not pass.
    assert len(np.unique(ref["sq_norm"])) == 4


def test_initialize_distributed_reads_lfx_env(monkeypatch):
    import jax

    from lfx import parallel

    seen = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: seen.append(kw))
    monkeypatch.setenv("LFX_NUM_PROCESSES", "3")
    monkeypatch.setenv("LFX_PROCESS_ID", "2")
    parallel.initialize_distributed()
    parallel.initialize_distributed(process_id=0, coordinator_address="h:1")  # explicit wins
    monkeypatch.delenv("LFX_NUM_PROCESSES")
    monkeypatch.delenv("LFX_PROCESS_ID")
    parallel.initialize_distributed()  # nothing set: jax's own cluster detection decides
    assert seen == [
        {"num_processes": 3, "process_id": 2},
        {"process_id": 0, "coordinator_address": "h:1", "num_processes": 3},
        {},
    ]


def test_initialize_distributed_after_backend_start_says_why():
    # The real jax error (not a mock), so the hint stays matched to jax's wording.
    code = (
        "import jax.numpy as jnp; from lfx import parallel; jnp.zeros(1); "
        "parallel.initialize_distributed(coordinator_address='127.0.0.1:1', num_processes=1, "
        "process_id=0)"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT}
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode != 0
    assert "call initialize_distributed() before those imports" in out.stderr, out.stderr[-2000:]


# --- the script path: experiments/ppo.py under LFX_DISTRIBUTED=1 -----------------------------------

PPO = os.path.join(ROOT, "experiments", "ppo.py")
TINY = ["--shard", "--config.total_timesteps=2048", "--config.num_envs=4", "--config.num_steps=32",
        "--config.num_seeds=4", "--config.chunk_size=2", "--config.checkpoint_every=2",
        "--noprogress"]  # 16 updates, a checkpoint after every chunk of 2
OUTPUTS = [".lock", "checkpoints", "learning_curve.png", "metrics.csv", "metrics.jsonl", "run.json",
           "summary.json"]
_CLUSTER_VARS = ("LFX_DISTRIBUTED", "LFX_NUM_PROCESSES", "LFX_PROCESS_ID",
                 "JAX_COORDINATOR_ADDRESS")


def _ppo_env(devices: int, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _CLUSTER_VARS}
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, MPLBACKEND="Agg",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **extra)
    return env


def _ppo_start(workdir, *extra: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, PPO, f"--workdir={workdir}", *TINY, *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _two_processes(workdir, *extra: str) -> list[subprocess.Popen]:
    """Processes 0 and 1 of one LFX_DISTRIBUTED=1 run, 2 CPU devices each, one shared workdir."""
    cluster = {"LFX_DISTRIBUTED": "1", "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{_free_port()}",
               "LFX_NUM_PROCESSES": "2"}
    return [_ppo_start(workdir, *extra, env=_ppo_env(2, **cluster, LFX_PROCESS_ID=str(i)))
            for i in range(2)]


def _wait(procs: list[subprocess.Popen], timeout: float = TIMEOUT_S) -> list[str]:
    logs, deadline = [], time.time() + timeout
    try:
        for p in procs:
            logs.append(p.communicate(timeout=max(1.0, deadline - time.time()))[0])
    except subprocess.TimeoutExpired:
        pytest.fail(f"experiments/ppo.py ran past {timeout} s (a hung collective?); finished "
                    f"logs: {[log[-2000:] for log in logs]}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(30)
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-4000:]
    return logs


def _outputs(workdir) -> tuple[dict, list, list[str]]:
    from lfx.experiment import read_rows

    steps = sorted(d for d in os.listdir(workdir / "checkpoints") if d.isdigit())
    return (json.load(open(workdir / "summary.json")), read_rows(str(workdir / "metrics.jsonl")),
            steps)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The same command in one process on 4 CPU devices: the same partition of the seeds, so the
    same compiled per-device programs, and so bit-identical metrics (on 1 device XLA's float
    reductions differ in the last bits: approx_kl ~1e-6 then differs at ~1e-10)."""
    workdir = tmp_path_factory.mktemp("one") / "w"
    _wait([_ppo_start(workdir, env=_ppo_env(4))])
    return workdir


def test_the_script_in_two_processes_writes_what_one_process_writes(tmp_path, one_process):
    workdir = tmp_path / "shared"
    procs = _two_processes(workdir)
    logs = _wait(procs)
    assert "on 4 cpu device(s)" in logs[1]
    assert sorted(os.listdir(workdir)) == sorted(os.listdir(one_process)) == OUTPUTS
    assert _outputs(workdir) == _outputs(one_process)
    assert json.load(open(workdir / "run.json")) == json.load(open(one_process / "run.json"))
    # Process 0 alone took the lock and wrote the files; process 1 computed the same summary.
    assert json.load(open(workdir / ".lock"))["pid"] == procs[0].pid
    assert "Wrote" in logs[0] and "Wrote" not in logs[1]
    final = [line for line in logs[0].splitlines() if "final episodic return" in line]
    assert final and final[0] in logs[1]


@pytest.mark.slow  # ~75 s: run with `pytest -m slow`; single-process kill/resume is in the default run
def test_two_processes_killed_after_a_checkpoint_resume_to_the_same_files(tmp_path, one_process):
    workdir = tmp_path / "shared"
    procs = _two_processes(workdir)
    ckpt, deadline = workdir / "checkpoints", time.time() + TIMEOUT_S

    def saved() -> bool:
        return ckpt.is_dir() and any(d.isdigit() for d in os.listdir(ckpt))

    try:
        while time.time() < deadline and all(p.poll() is None for p in procs) and not saved():
            time.sleep(0.02)
        running = [p.poll() is None for p in procs]
        for p in procs:
            p.send_signal(signal.SIGKILL)
        logs = [p.communicate(timeout=60)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(running), f"a process ended before the kill: {[log[-3000:] for log in logs]}"
    assert saved(), f"no checkpoint within {TIMEOUT_S} s: {[log[-3000:] for log in logs]}"
    assert not os.path.exists(workdir / "summary.json")
    killed_at = max(int(d) for d in os.listdir(ckpt) if d.isdigit())
    assert killed_at < 16, killed_at
    print(f"killed after the checkpoint of update {killed_at} of 16")

    logs = _wait(_two_processes(workdir, "--resume"))
    for log in logs:
        assert "Resumed from update" in log, log[-3000:]
    summary, rows, _ = _outputs(workdir)
    ref_summary, ref_rows, _ = _outputs(one_process)
    assert summary == ref_summary
    assert rows == ref_rows


def test_import_lfx_does_nothing_unless_lfx_distributed_is_set():
    code = "import sys, lfx; assert 'jax' not in sys.modules, 'import lfx imported jax'"
    for value in ("", "0"):
        out = subprocess.run([sys.executable, "-c", code], env=_ppo_env(1, LFX_DISTRIBUTED=value),
                             capture_output=True, text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr[-2000:]
    out = subprocess.run([sys.executable, "-c", "import lfx"],
                         env=_ppo_env(1, LFX_DISTRIBUTED="maybe"), capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode != 0 and "LFX_DISTRIBUTED='maybe'" in out.stderr, out.stderr[-2000:]
