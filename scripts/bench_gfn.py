"""Speed: lfx vs torchgfn, hypergrid trajectory balance, training iterations per second.

Same work on both sides: hypergrid (R0 0.1, R1 0.5, R2 2.0), K-hot input, MLP with 2 hidden layers
of 256 (ReLU) for PF, uniform PB, learned log Z, Adam (lr 1e-3, log Z lr 0.1), on-policy batches of
16 / 128 / 512 trajectories, one gradient step per iteration. torchgfn runs its efficient on-policy
path (log-probs saved while sampling, not recomputed). Runs are interleaved (lfx, torchgfn, lfx,
...) and the MEDIAN of the per-pair ratios is reported.

    python scripts/bench_gfn.py --peer_python=/opt/peers/torchgfn/bin/python --repeats=3
    python scripts/bench_gfn.py --ablate_skip --batches=16      # lfx only: cond-skip on vs off
    python scripts/bench_gfn.py --peer_python=python3 --peer_device=cuda   # on a GPU machine
    python scripts/bench_gfn.py --lfx_rollout=padded,packed   # both lfx rollouts, interleaved

`--lfx_rollout` picks lfx's `GFNConfig.rollout` ("padded": `forward_rollout` differentiated end to
end; "packed": `lfx.gfn.packed`, sampling without autodiff and a gradient over the transitions
taken only); a comma list times each, interleaved with the same torchgfn runs (one row each).

The torchgfn side runs in its own virtual environment: this script re-invokes itself there with
`--peer-worker` (that code path imports torch only, never jax).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time

REWARD = {"R0": 0.1, "R1": 0.5, "R2": 2.0}


def peer_worker(dim: int, height: int, batch: int, iters: int, warmup: int, threads: int,
                device: str = "cpu") -> dict:
    import torch  # noqa: PLC0415
    from gfn.estimators import DiscretePolicyEstimator  # noqa: PLC0415
    from gfn.gflownet import TBGFlowNet  # noqa: PLC0415
    from gfn.gym import HyperGrid  # noqa: PLC0415
    from gfn.preprocessors import KHotPreprocessor  # noqa: PLC0415
    from gfn.utils.modules import MLP, DiscreteUniform  # noqa: PLC0415

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    env = HyperGrid(ndim=dim, height=height, reward_fn_kwargs=dict(REWARD), validate_modes=False,
                    device=device)
    pre = KHotPreprocessor(height=height, ndim=dim)
    pf = DiscretePolicyEstimator(
        MLP(input_dim=pre.output_dim, output_dim=env.n_actions, hidden_dim=256, n_hidden_layers=2),
        env.n_actions, preprocessor=pre, is_backward=False,
    )
    pb = DiscretePolicyEstimator(
        DiscreteUniform(env.n_actions - 1), env.n_actions, preprocessor=pre, is_backward=True
    )
    gfn = TBGFlowNet(pf=pf, pb=pb, init_logZ=0.0).to(device)
    opt = torch.optim.Adam(gfn.pf_pb_parameters(), lr=1e-3)
    opt.add_param_group({"params": gfn.logz_parameters(), "lr": 0.1})

    def step():
        tr = gfn.sample_trajectories(env, n=batch, save_logprobs=True)
        opt.zero_grad()
        loss = gfn.loss(env, tr, recalculate_all_logprobs=False)
        loss.backward()
        opt.step()
        return float(loss)

    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(iters):
        step()
    dt = time.perf_counter() - t
    return {"its": iters / dt, "iters": iters, "seconds": dt}


def make_lfx(dim: int, height: int, batch: int, iters: int, rollout: str = "padded"):
    import jax  # noqa: PLC0415

    from lfx.gfn.train import GFNConfig, GFNHParams, make_train  # noqa: PLC0415

    cfg = GFNConfig(
        env_kwargs=(("dim", dim), ("height", height), ("r0", REWARD["R0"]), ("r1", REWARD["R1"]),
                    ("r2", REWARD["R2"])),
        loss="tb", batch_size=batch, num_iterations=iters, hidden=(256, 256), rollout=rollout,
    )
    train = jax.jit(make_train(cfg).train)
    hp = GFNHParams(lr=1e-3, logz_lr=0.1)
    jax.block_until_ready(train(jax.random.key(0), hp))  # compile + warm-up

    def run(seed: int) -> dict:
        t = time.perf_counter()
        _, m = train(jax.random.key(seed), hp)
        jax.block_until_ready(m)
        dt = time.perf_counter() - t
        return {"its": iters / dt, "iters": iters, "seconds": dt,
                "mean_length": float(m["train/length"].mean())}

    return run


def ablate_skip(grids: str, batch: int, iters: int, repeats: int) -> None:
    """lfx alone: training time with `skip_done=False` / `True` (cond-skip of finished steps)."""
    import jax  # noqa: PLC0415

    from lfx.gfn.train import GFNConfig, GFNHParams, make_train  # noqa: PLC0415

    for grid in grids.split(","):
        dim, height = (int(v) for v in grid.split("x"))
        fns = {}
        for skip in (True, False):
            cfg = GFNConfig(env_kwargs=(("dim", dim), ("height", height), ("r0", 0.1)), loss="tb",
                            batch_size=batch, num_iterations=iters, hidden=(256, 256), skip_done=skip)
            fns[skip] = jax.jit(make_train(cfg).train)
            jax.block_until_ready(fns[skip](jax.random.key(0), GFNHParams()))
        ratios = []
        for r in range(repeats):
            t = {}
            for skip in (True, False):
                t0 = time.perf_counter()
                jax.block_until_ready(fns[skip](jax.random.key(r + 1), GFNHParams()))
                t[skip] = time.perf_counter() - t0
            ratios.append(t[False] / t[True])
        print(json.dumps({"grid": grid, "batch": batch, "iters": iters,
                          "speedup_of_skip_done_median": statistics.median(ratios),
                          "ratios": [round(x, 2) for x in ratios]}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer-worker", action="store_true")
    ap.add_argument("--peer_python", default="/opt/peers/torchgfn/bin/python")
    ap.add_argument("--grids", default="2x8,4x16")
    ap.add_argument("--batches", default="16,128,512")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0, help="target seconds per timed run")
    ap.add_argument("--min_iters", type=int, default=30, help="fewest timed torchgfn iterations")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (1 is fastest on the shared 2-core box)")
    ap.add_argument("--dim", type=int)
    ap.add_argument("--height", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--iters", type=int)
    ap.add_argument("--peer_device", default="cpu", help="torch device for torchgfn: cpu | cuda")
    ap.add_argument("--out", default="")
    ap.add_argument("--lfx_single_thread", action="store_true",
                    help="restrict XLA to one CPU thread (same thread budget as the peer)")
    ap.add_argument("--ablate_skip", action="store_true", help="lfx only: skip_done on vs off")
    ap.add_argument("--lfx_rollout", default="padded",
                    help="lfx GFNConfig.rollout: padded | packed, or a comma list timed interleaved")
    a = ap.parse_args()
    if a.ablate_skip:
        ablate_skip(a.grids, int(a.batches.split(",")[0]), 300, 5)
        return
    if a.peer_worker:
        print(json.dumps(peer_worker(a.dim, a.height, a.batch, a.iters, 5, a.threads, a.peer_device)))
        return

    if a.lfx_single_thread:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                                   " intra_op_parallelism_threads=1").strip()
    import jax  # noqa: PLC0415

    def peer(dim, height, batch, iters):
        cmd = [a.peer_python, os.path.abspath(__file__), "--peer-worker", f"--dim={dim}",
               f"--height={height}", f"--batch={batch}", f"--iters={iters}", f"--threads={a.threads}",
               f"--peer_device={a.peer_device}"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    rows = []
    print(f"device: {jax.devices()[0].device_kind}; jax {jax.__version__}")
    for grid in a.grids.split(","):
        dim, height = (int(v) for v in grid.split("x"))
        for batch in (int(b) for b in a.batches.split(",")):
            # size the runs so each side takes about `--seconds`
            probe = peer(dim, height, batch, 10)
            p_iters = max(a.min_iters, int(a.seconds * probe["its"]))
            # one compilation per setting: size lfx's run from the peer's speed (assume ~3x)
            l_iters = max(3 * a.min_iters, int(3 * a.seconds * probe["its"]))
            rollouts = a.lfx_rollout.split(",")
            runs = {ro: make_lfx(dim, height, batch, l_iters, ro) for ro in rollouts}
            lfx_its = {ro: [] for ro in rollouts}
            lengths = {ro: [] for ro in rollouts}
            ratios = {ro: [] for ro in rollouts}
            peer_its = []
            for r in range(a.repeats):
                for ro in rollouts:  # lfx (each rollout), then torchgfn
                    lo = runs[ro](100 + r)
                    lfx_its[ro].append(lo["its"])
                    lengths[ro].append(lo["mean_length"])
                po = peer(dim, height, batch, p_iters)
                peer_its.append(po["its"])
                for ro in rollouts:
                    ratios[ro].append(lfx_its[ro][-1] / po["its"])
            for ro in rollouts:
                row = {
                    "grid": grid, "batch": batch, "rollout": ro, "lfx_its": statistics.median(lfx_its[ro]),
                    "torchgfn_its": statistics.median(peer_its), "median_ratio": statistics.median(ratios[ro]),
                    "ratios": [round(x, 2) for x in ratios[ro]], "lfx_iters": l_iters, "peer_iters": p_iters,
                    "mean_length": statistics.mean(lengths[ro]),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| grid | batch | lfx rollout | lfx it/s | torchgfn it/s | median ratio (per pair) | lfx mean length |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['grid']} | {r['batch']} | {r['rollout']} | {r['lfx_its']:.1f} | {r['torchgfn_its']:.2f} | "
              f"{r['median_ratio']:.2f}x ({', '.join(map(str, r['ratios']))}) | {r['mean_length']:.1f} |")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
