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
Each measurement (network x {targets, grid rate at each N, transfer}, and PPO's transfer) is one
cell of `<workdir>/results.jsonl` (`lfx.experiment.CellLog`): a killed run continued with `--resume`
skips the finished ones. Then `lpg_report.json`, `lpg_report.md` and `targets_over_lifetime.png`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import time

import jax
import numpy as np
from absl import flags, logging

from lfx.experiment import CellLog, ConfigError, RunConfig, cli, from_configdict
from lfx.meta import lpg, lpg_analysis, lpg_train
from lfx.rl import ppo

FLAGS = cli.define_flags(
    "meta_lpg.py:ta_lpg_es",
    workdir_help="Output folder (default: a new runs/eval_lpg_<time>); the meta_lpg --config the "
                 "runs were trained with gives the network and agent shapes.")
_RUNS = flags.DEFINE_string("runs", "", "Comma-separated name=workdir of experiments/meta_lpg.py runs.")
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
    """--lifetimes as a list of positive ints; raises ConfigError before anything compiles."""
    try:
        out = [int(n) for n in filter(None, text.split(","))]
    except ValueError:
        raise ConfigError(f"--lifetimes must be comma-separated integers, got {text!r}.") from None
    if any(n < 1 for n in out):
        raise ConfigError(f"--lifetimes must be positive numbers of agent updates, got {out}.")
    return out


def parse_runs(text: str) -> dict[str, str]:
    """--runs "name=workdir,..." -> {name: params.npz path}; refuses a malformed or missing run."""
    out = {}
    for item in filter(None, text.split(",")):
        name, sep, path = item.partition("=")
        if not sep or not name or name in ("init", "ppo") or name in out:
            raise ConfigError(f"--runs entry {item!r} must be name=workdir with a new name (not "
                              f"'init' or 'ppo').")
        if not os.path.exists(os.path.join(path, "params.npz")):
            raise ConfigError(f"--runs {name}={path}: no params.npz there (a finished "
                              f"experiments/meta_lpg.py workdir).")
        out[name] = os.path.join(path, "params.npz")
    return out


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
    return np.asarray(lpg.masked_final_mean(m["train/episode_return"], m["train/active"], 0.1)).tolist()


def ppo_returns(env_name, total_steps, key, num_seeds):
    """PPO (PureJaxRL's MinAtar settings: 64-64 ReLU MLP, lr 5e-3) on the same env steps [S]."""
    cfg = ppo.PPOConfig(env_name=env_name, num_envs=64, num_steps=128, total_timesteps=total_steps,
                        num_minibatches=8, activation="relu")
    _, m = jax.jit(jax.vmap(ppo.make_train(cfg).train, in_axes=(0, None)))(
        jax.random.split(key, num_seeds), ppo.HParams(lr=5e-3))
    curves = np.asarray(m["train/episode_return"])
    w = max(1, int(round(0.1 * curves.shape[-1])))
    return curves[:, -w:].mean(-1).tolist()


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    c = cli.get_config()
    static, run_cfg, _ = from_configdict(c, lpg_train.MetaLPGConfig, RunConfig,
                                         hparams=lpg_train.hparams_class(c.get("estimator", "es")))
    lifetimes = parse_lifetimes(_LIFETIMES.value)
    runs = parse_runs(_RUNS.value)
    for name, value in (("num_batches", _NUM_BATCHES.value), ("num_levels", _NUM_LEVELS.value),
                        ("num_seeds", _NUM_SEEDS.value), ("transfer_updates", _TRANSFER_UPDATES.value)):
        if value < 1 or (name in ("num_levels", "num_seeds") and value < 2):
            raise ConfigError(f"--{name} must be >= {2 if name in ('num_levels', 'num_seeds') else 1} "
                              f"(a standard error needs two), got {value}.")
    cfg = static.lpg_config()
    init = lpg_train.init_params(static, run_cfg.seed)  # the initialisation meta_lpg.py starts from
    nets = {"init": init}
    for name, path in runs.items():
        nets[name] = lpg_analysis.load_params(path, init)
    settings = {"config": dataclasses.asdict(static), "seed": run_cfg.seed, "runs": _RUNS.value,
                **{f: FLAGS[f].value for f in ("num_batches", "num_levels", "transfer_env",
                                               "transfer_updates", "transfer_num_envs",
                                               "transfer_agent_hidden", "transfer_agent_lr",
                                               "num_seeds", "lifetimes")}}
    wd = cli.open_workdir("eval_lpg", settings, has_checkpoints=CellLog.has_cells)
    report = {"command": "python " + " ".join(sys.argv), "config": settings["config"]}
    t0 = time.time()
    cells = []
    for name, params in nets.items():
        if cfg.temporally_aware:
            cells.append((f"targets/{name}", lambda p=params: lpg_analysis.target_variation(
                cfg, p, jax.random.key(5), _NUM_BATCHES.value)))
        cells.append((f"grid_reward_rate/{name}", lambda p=params: grid_reward_rate(
            cfg, p, jax.random.key(777), _NUM_LEVELS.value)))
        for n in lifetimes:
            cells.append((f"grid_reward_rate_N{n}/{name}", lambda p=params, n=n: grid_reward_rate(
                cfg, p, jax.random.key(777), _NUM_LEVELS.value, lifetime=n)))
    tcfg = steps = None
    if _TRANSFER_ENV.value:
        tcfg = lpg.LPGConfig(
            hidden_size=static.hidden_size, temporally_aware=static.temporally_aware,
            env_name=_TRANSFER_ENV.value, num_envs=_TRANSFER_ENVS.value, num_steps=static.num_steps,
            max_updates=_TRANSFER_UPDATES.value, agent_hidden=_TRANSFER_HIDDEN.value,
            agent_lr=_TRANSFER_LR.value)
        steps = tcfg.num_envs * tcfg.num_steps * tcfg.max_updates
        for name, params in nets.items():
            cells.append((f"transfer/{name}", lambda p=params: transfer_returns(
                tcfg, p, jax.random.key(31), _NUM_SEEDS.value)))
        cells.append(("transfer/ppo", lambda: ppo_returns(
            _TRANSFER_ENV.value, steps, jax.random.key(31), _NUM_SEEDS.value)))
    with wd:
        log = CellLog(wd)

        def timed(cell, fn):
            def run():
                value = fn()
                print(cell, json.dumps(value if not isinstance(value, np.ndarray) else value.tolist()
                                       )[:200], f"({time.time() - t0:.0f}s)", flush=True)
                return {"value": value}
            return run

        rows = {r["cell"]: r["value"] for r in log.run([(k, timed(k, f)) for k, f in cells],
                                                       progress=FLAGS.progress)}
        for name in nets:
            row = {k.split("/")[0]: v for k, v in rows.items() if k.split("/", 1)[1] == name
                   and not k.startswith("transfer/")}
            report[name] = row
        if _TRANSFER_ENV.value:
            report["transfer"] = {"env": _TRANSFER_ENV.value, "env_steps": steps,
                                  "num_seeds": _NUM_SEEDS.value,
                                  **{k.split("/", 1)[1]: v for k, v in rows.items()
                                     if k.startswith("transfer/")}}
        report["wall_time_s"] = time.time() - t0
        wd.write_json("lpg_report.json", report)
        write_markdown(report, nets, cfg, lifetimes, wd)
        if cfg.temporally_aware:
            plot(report, nets, wd)


def _ms(v):
    v = np.asarray(v)
    return f"{v.mean():.3g} ± {v.std(ddof=1) / np.sqrt(len(v)):.2g}" if len(v) > 1 else f"{v.mean():.3g}"


def write_markdown(report, nets, cfg, lifetimes, wd):
    head = ["network", "grid reward rate (held-out levels)"]
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
    with open(wd.file("lpg_report.md"), "w") as f:
        f.write(text)
    print(text)


def plot(report, nets, wd):
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
    fig.savefig(wd.file("targets_over_lifetime.png"), dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    cli.run(main)
