"""Compare meta-trained LPG / TA-LPG networks: target variation with progress, and MinAtar transfer.

    python experiments/eval_lpg.py --runs=es=runs/meta_lpg_ta_es_long,metagrad=runs/meta_lpg_ta_mg_long

For each run (a workdir of experiments/meta_lpg.py) and for the randomly initialised network:
  1. the TA-LPG claim's measure (lfx.meta.lpg_analysis): how much the policy targets π̂ change with
     the training progress n/N on fixed trajectories, over --num_batches agents/levels (mean ± s.e.);
  2. the final reward rate of fresh agents on held-out random levels of the meta-training grid world,
     at the meta-training lifetime N = max_updates and at each of --lifetimes (other N, shorter or
     longer: the lifetime generalisation TA-LPG's n/N and log N inputs are meant to give);
  3. transfer: fresh agents on --transfer_env (a MinAtar game; flattened observations, MLP agent)
     trained with each network for --transfer_updates updates, against PPO on the same number of
     environment steps (PureJaxRL's MinAtar settings), --num_seeds seeds.
Writes `<workdir>/lpg_report.json`, `lpg_report.md` and `targets_over_lifetime.png`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from lfx.meta import lpg, lpg_analysis  # noqa: E402
from lfx.rl import ppo  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "meta_lpg.py:ta_lpg_es"),
    "The meta_lpg config the runs were trained with (network and agent shapes).")
_RUNS = flags.DEFINE_string("runs", "", "Comma-separated name=workdir of experiments/meta_lpg.py runs.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/eval_lpg", "Output folder.")
_NUM_BATCHES = flags.DEFINE_integer("num_batches", 16, "Agents/levels for the target variation.")
_NUM_LEVELS = flags.DEFINE_integer("num_levels", 32, "Held-out grid-world levels for the reward rate.")
_TRANSFER_ENV = flags.DEFINE_string("transfer_env", "Breakout-MinAtar", "Transfer environment ('' = skip).")
_TRANSFER_UPDATES = flags.DEFINE_integer("transfer_updates", 500, "Agent updates in the transfer lifetime.")
_TRANSFER_ENVS = flags.DEFINE_integer("transfer_num_envs", 32, "Parallel environments per transfer agent.")
_TRANSFER_HIDDEN = flags.DEFINE_integer("transfer_agent_hidden", 64, "MLP width of the transfer agent.")
_TRANSFER_LR = flags.DEFINE_float("transfer_agent_lr", 5e-3, "Adam step size of the transfer agent.")
_NUM_SEEDS = flags.DEFINE_integer("num_seeds", 4, "Seeds per transfer cell.")
_LIFETIMES = flags.DEFINE_string(
    "lifetimes", "", "Comma-separated lifetimes N (agent updates) for extra held-out reward rates, e.g. "
    "'10,20,80,160'; the same levels and agent seeds at every N.")


def parse_lifetimes(text: str) -> list[int]:
    """--lifetimes as a list of positive ints; raises ValueError before anything compiles."""
    try:
        out = [int(n) for n in filter(None, text.split(","))]
    except ValueError:
        raise ValueError(f"--lifetimes must be comma-separated integers, got {text!r}.") from None
    if any(n < 1 for n in out):
        raise ValueError(f"--lifetimes must be positive numbers of agent updates, got {out}.")
    return out


def grid_config(c) -> lpg.LPGConfig:
    return lpg.LPGConfig(
        hidden_size=c.hidden_size, temporally_aware=c.temporally_aware, env_name=c.env_name,
        random_levels=c.random_levels, num_envs=c.num_envs, num_steps=c.num_steps,
        max_updates=c.max_updates, agent_hidden=c.agent_hidden, agent_lr=c.agent_lr,
    )


@functools.lru_cache(maxsize=16)
def _train_fn(cfg, per_level):
    """Compiled once per config: fresh agents vmapped over seeds (and levels when per_level)."""
    axes = (0, None, None, 0) if per_level else (0, None)
    return jax.jit(jax.vmap(lpg.make_lpg_train(cfg), in_axes=axes))


def grid_reward_rate(cfg, params, key, num, lifetime=None):
    """Final reward rate (last 20% of a lifetime's updates) of fresh agents on `num` held-out random
    levels; lifetime N (default `cfg.max_updates`) sets both the scan length and the n/N, log N inputs."""
    if lifetime is not None:
        cfg = dataclasses.replace(cfg, max_updates=int(lifetime))
    k1, k2 = jax.random.split(key)
    _, m = _train_fn(cfg, True)(
        jax.random.split(k1, num), params, float(cfg.max_updates), jax.random.split(k2, num))
    rate = np.asarray(lpg.masked_final_mean(m["train/reward_rate"], m["train/active"], 0.2))
    return float(rate.mean()), float(rate.std(ddof=1) / np.sqrt(num))


def transfer_returns(cfg, params, key, num_seeds):
    """Final episode return (last 10% of updates) of LPG-driven agents on the transfer env [S]."""
    _, m = _train_fn(cfg, False)(jax.random.split(key, num_seeds), params)
    return np.asarray(lpg.masked_final_mean(m["train/episode_return"], m["train/active"], 0.1))


def ppo_returns(env_name, total_steps, key, num_seeds):
    """PPO (PureJaxRL's MinAtar settings: 64-64 ReLU MLP, lr 5e-3) on the same env steps [S]."""
    cfg = ppo.PPOConfig(env_name=env_name, num_envs=64, num_steps=128, total_timesteps=total_steps,
                        num_minibatches=8, activation="relu")
    _, m = jax.jit(jax.vmap(ppo.make_train(cfg), in_axes=(0, None)))(
        jax.random.split(key, num_seeds), ppo.HParams(lr=5e-3))
    curves = np.asarray(m["train/episode_return"])
    w = max(1, int(round(0.1 * curves.shape[-1])))
    return curves[:, -w:].mean(-1)


def main(argv):
    del argv
    c = _CONFIG.value
    lifetimes = parse_lifetimes(_LIFETIMES.value)
    os.makedirs(_WORKDIR.value, exist_ok=True)
    cfg = grid_config(c)
    init = lpg.init_lpg(jax.random.key(c.seed + 1), cfg)  # the initialisation meta_lpg.py starts from
    nets = {"init": init}
    for item in filter(None, _RUNS.value.split(",")):
        name, path = item.split("=")
        nets[name] = lpg_analysis.load_params(os.path.join(path, "params.npz"), init)
    report = {"command": "python " + " ".join(sys.argv), "config": json.loads(c.to_json_best_effort())}
    t0 = time.time()
    for name, params in nets.items():
        row = {}
        if cfg.temporally_aware:
            row["targets"] = lpg_analysis.target_variation(cfg, params, jax.random.key(5), _NUM_BATCHES.value)
        row["grid_reward_rate"] = grid_reward_rate(cfg, params, jax.random.key(777), _NUM_LEVELS.value)
        for n in lifetimes:
            row[f"grid_reward_rate_N{n}"] = grid_reward_rate(
                cfg, params, jax.random.key(777), _NUM_LEVELS.value, lifetime=n)
        print(name, json.dumps({k: v for k, v in row.items() if k != "targets"}),
              row.get("targets", {}).get("pi_hat_progress_variation"), f"({time.time() - t0:.0f}s)", flush=True)
        report[name] = row
    if _TRANSFER_ENV.value:
        tcfg = lpg.LPGConfig(
            hidden_size=c.hidden_size, temporally_aware=c.temporally_aware, env_name=_TRANSFER_ENV.value,
            num_envs=_TRANSFER_ENVS.value, num_steps=c.num_steps, max_updates=_TRANSFER_UPDATES.value,
            agent_hidden=_TRANSFER_HIDDEN.value, agent_lr=_TRANSFER_LR.value)
        steps = tcfg.num_envs * tcfg.num_steps * tcfg.max_updates
        report["transfer"] = {"env": _TRANSFER_ENV.value, "env_steps": steps, "num_seeds": _NUM_SEEDS.value}
        for name, params in nets.items():
            r = transfer_returns(tcfg, params, jax.random.key(31), _NUM_SEEDS.value)
            report["transfer"][name] = r.tolist()
            print(f"transfer {name}: {r.mean():.2f} ± {r.std(ddof=1) / np.sqrt(len(r)):.2f} "
                  f"({time.time() - t0:.0f}s)", flush=True)
        r = ppo_returns(_TRANSFER_ENV.value, steps, jax.random.key(31), _NUM_SEEDS.value)
        report["transfer"]["ppo"] = r.tolist()
        print(f"transfer ppo: {r.mean():.2f} ± {r.std(ddof=1) / np.sqrt(len(r)):.2f}", flush=True)
    report["wall_time_s"] = time.time() - t0
    with open(os.path.join(_WORKDIR.value, "lpg_report.json"), "w") as f:
        json.dump(report, f, indent=1)
    write_markdown(report, nets, cfg)
    if cfg.temporally_aware:
        plot(report, nets)


def _ms(v):
    v = np.asarray(v)
    return f"{v.mean():.3g} ± {v.std(ddof=1) / np.sqrt(len(v)):.2g}" if len(v) > 1 else f"{v.mean():.3g}"


def write_markdown(report, nets, cfg):
    head = ["network", "grid reward rate (held-out levels)"]
    lifetimes = parse_lifetimes(_LIFETIMES.value)
    head += [f"reward rate, N = {n}" for n in lifetimes]
    if cfg.temporally_aware:
        head += ["π̂ progress variation V", "ŷ progress TV"]
    if "transfer" in report:
        head += [f"{report['transfer']['env']} return ({report['transfer']['env_steps']:,} steps)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in [*nets, "ppo"]:
        if name == "ppo" and "transfer" not in report:
            continue
        cells = [name]
        row = report.get(name, {})
        cells.append("{:.4f} ± {:.4f}".format(*row["grid_reward_rate"]) if row else "—")
        cells += ["{:.4f} ± {:.4f}".format(*row[f"grid_reward_rate_N{n}"]) if row else "—"
                  for n in lifetimes]
        if cfg.temporally_aware:
            t = row.get("targets")
            cells += [f"{t['pi_hat_progress_variation']:.3f} ± {t['pi_hat_progress_variation_se']:.3f}",
                      f"{t['y_hat_progress_tv']:.4f} ± {t['y_hat_progress_tv_se']:.4f}"] if t else ["—", "—"]
        if "transfer" in report:
            cells.append(_ms(report["transfer"][name]))
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(_WORKDIR.value, "lpg_report.md"), "w") as f:
        f.write(text)
    print(text)


def plot(report, nets):
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for name in nets:
        t = report[name]["targets"]
        ax.plot(t["progress"], t["pi_hat_mean"], marker="o", ms=3, label=name)
    ax.set_xlabel("training progress n/N")
    ax.set_ylabel("mean policy target π̂")
    ax.set_title("TA-LPG targets over the agent's lifetime", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(_WORKDIR.value, "targets_over_lifetime.png"), dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    app.run(main)
