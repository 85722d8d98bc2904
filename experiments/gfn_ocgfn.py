"""OC-GFN: reward-free pre-training (success rate) and adaptation to a downstream reward.

    python experiments/gfn_ocgfn.py --config=experiments/configs/gfn_ocgfn.py:hypergrid
    python experiments/gfn_ocgfn.py --config=experiments/configs/gfn_ocgfn.py:bitseq
    python experiments/gfn_ocgfn.py --config=experiments/configs/gfn_ocgfn.py:adapt_hypergrid
    python experiments/gfn_ocgfn.py --config=experiments/configs/gfn_ocgfn.py:adapt_bitseq

Pre-training (`mode = "pretrain"`): success rate = fraction of `eval_batch` on-policy conditional
samples (epsilon 0) whose terminal object equals the requested outcome y (drawn uniformly). Writes
`<workdir>/metrics.jsonl`, `summary.json` (final success, mean and std over seeds), `success.png`.

Adaptation (`mode = "adapt"`): pre-trains one OC-GFN (or loads it), freezes
it, trains the amortised predictor (`lfx.gfn.ocgfn_adapt`) on the downstream reward for each seed,
and a TB GFlowNet from scratch with the same network size, batch and exploration; records modes
discovered vs iterations / samples / reward queries. Writes `curves.npz`, `summary.json`, `modes.png`.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from lfx.gfn.metrics import (
    build_dag,
    modes_found,
    terminal_distribution,
    total_variation,
)
from lfx.gfn.networks import PolicyOutput
from lfx.gfn.ocgfn import (
    OCGFNConfig,
    OCGFNHParams,
    make_conditional_policy,
    make_pretrain,
)
from lfx.gfn.ocgfn_adapt import AdaptConfig, AdaptHParams, direct_conversion, make_adapt
from lfx.gfn.rollout import forward_rollout
from lfx.gfn.train import GFN_ENVS, GFNConfig, GFNHParams, make_train

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "gfn_ocgfn.py:hypergrid")
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/gfn_ocgfn", "Output folder.")


def main(_):
    c = _CONFIG.value
    if c.get("mode", "pretrain") == "adapt":
        return run_adaptation(c, _WORKDIR.value)
    os.makedirs(_WORKDIR.value, exist_ok=True)
    env, ep = GFN_ENVS[c.env](**dict(c.env_kwargs))
    cfg = OCGFNConfig(batch_size=c.batch_size, num_iterations=c.num_iterations, hidden=tuple(c.hidden),
                      eval_every=c.eval_every, eval_batch=c.eval_batch)
    pre = jax.jit(make_pretrain(cfg, env, ep))
    hp = OCGFNHParams(lr=c.lr, epsilon=c.epsilon, tb_coef=c.tb_coef)
    finals, curves = [], []
    with open(os.path.join(_WORKDIR.value, "metrics.jsonl"), "w") as f:
        for seed in range(c.first_seed, c.first_seed + c.seeds):
            t0 = time.time()
            _, m = pre(jax.random.key(seed), hp)
            s = np.asarray(m["pretrain/success"])
            steps = np.nonzero(~np.isnan(s))[0]
            f.writelines(json.dumps({"seed": seed, "step": int(i), "success": float(s[i]),
                                    "loss": float(m["pretrain/loss"][i])}) + "\n" for i in steps)
            finals.append(float(s[-1]))
            curves.append((steps, s[steps]))
            print(f"seed {seed}: success {finals[-1]:.3f} ({time.time() - t0:.0f}s)", flush=True)
    summary = {"env": env.name, "success_mean": float(np.mean(finals)), "success_std": float(np.std(finals)),
               "success_per_seed": finals, "config": c.to_dict()}
    with open(os.path.join(_WORKDIR.value, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for st, sv in curves:
        ax.plot(st, sv, alpha=0.7)
    ax.axhline(0.95, ls="--", c="k")
    ax.set_xlabel("pre-training iteration")
    ax.set_ylabel("success rate")
    ax.set_title(f"OC-GFN on {env.name}, {c.seeds} seeds")
    fig.tight_layout()
    fig.savefig(os.path.join(_WORKDIR.value, "success.png"), dpi=120)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}))


def _pretrained(c, env, ep, workdir):
    """The frozen OC-GFN: loaded from `c.pretrained_path` if set, else pre-trained and saved."""
    from flax import serialization

    cfg = OCGFNConfig(batch_size=c.batch_size, num_iterations=c.num_iterations, hidden=tuple(c.hidden),
                      eval_every=c.eval_every, eval_batch=c.eval_batch)
    pre = make_pretrain(cfg, env, ep)
    init, _ = make_conditional_policy(env, cfg.hidden)
    path = c.pretrained_path or os.path.join(workdir, "pretrained.msgpack")
    t0 = time.time()
    if c.pretrained_path:
        with open(path, "rb") as f:
            params = serialization.from_bytes(init(jax.random.key(0)), f.read())
        info = {"pretrained_from": path}
    else:
        params, _ = jax.jit(pre)(jax.random.key(c.pretrain_seed), OCGFNHParams(lr=c.lr, epsilon=c.epsilon,
                                                                                tb_coef=c.tb_coef))
        with open(path, "wb") as f:
            f.write(serialization.to_bytes(params))
        info = {"pretrained_to": path, "pretrain_seconds": time.time() - t0}
    succ = jax.jit(pre.success_rate)(jax.random.key(10_000), params)
    info["pretrain_success"] = float(succ)
    print(f"OC-GFN: {info}", flush=True)
    return params, pre.apply, info


def run_adaptation(c, workdir):
    """Adapted OC-GFN (frozen + amortised predictor) vs TB from scratch: modes vs steps, seeds."""
    os.makedirs(workdir, exist_ok=True)
    env, ep = GFN_ENVS[c.env](**dict(c.env_kwargs))
    pre_params, cond_apply, info = _pretrained(c, env, ep, workdir)
    dag = build_dag(env, ep) if c.exact_eval else None
    a = c.adapt
    if dag is not None:
        ys = np.nonzero(np.asarray(dag.fwd_mask[:, -1]))[0]
        _, log_pf = jax.jit(lambda p: direct_conversion(
            dag, env, ep, cond_apply, p, jnp.asarray(dag.states[ys]), dag.log_r[ys]))(pre_params)
        info["direct_conversion_tv"] = float(total_variation(dag.target, terminal_distribution(dag, log_pf)))
        print(f"direct conversion with the learned OC-GFN: TV {info['direct_conversion_tv']:.4f}", flush=True)
    acfg = AdaptConfig(batch_size=a.batch_size, num_iterations=a.num_iterations, hidden=tuple(c.hidden),
                       num_outcomes=a.num_outcomes, eval_every=a.eval_every if dag is not None else 0)
    adapt = jax.jit(make_adapt(acfg, env, ep, cond_apply, dag))
    ahp = AdaptHParams(lr=a.lr, epsilon=a.epsilon, outcome_epsilon=a.outcome_epsilon)
    gcfg = GFNConfig(env=c.env, env_kwargs=tuple(dict(c.env_kwargs).items()), loss="tb",
                     batch_size=a.batch_size, num_iterations=a.num_iterations, hidden=tuple(c.hidden),
                     eval_every=a.eval_every if dag is not None else 0,
                     rollout="padded")  # the rollout of the recorded results (docs/results/gfn.md)
    scratch = jax.jit(make_train(gcfg, env, ep))
    ghp = GFNHParams(lr=a.lr, logz_lr=a.logz_lr, epsilon=a.epsilon)
    curves = {"adapted": [], "scratch": []}
    tvs = {"adapted": [], "scratch": []}
    queries, secs = [], {"adapted": [], "scratch": []}
    if dag is not None:  # reference: sampling from the exact direct conversion (enumerates outcomes)
        direct = jax.jit(_make_direct_sampler(env, ep, dag, a.batch_size, a.num_iterations))
        curves["direct"] = [np.asarray(direct(jax.random.key(1000 + sd), log_pf))
                            for sd in range(c.first_seed, c.first_seed + c.seeds)]
    for seed in range(c.first_seed, c.first_seed + c.seeds):
        k = jax.random.key(1000 + seed)
        t0 = time.time()
        _, m = adapt(k, pre_params, ahp)
        jax.block_until_ready(m)
        secs["adapted"].append(time.time() - t0)
        curves["adapted"].append(np.asarray(m["adapt/modes_found"]))
        queries.append(np.cumsum(np.asarray(m["adapt/reward_queries"])))
        tvs["adapted"].append(np.asarray(m.get("eval/tv", np.full(a.num_iterations, np.nan))))
        t0 = time.time()
        _, g = scratch(k, ghp)
        jax.block_until_ready(g)
        secs["scratch"].append(time.time() - t0)
        curves["scratch"].append(np.asarray(g["train/modes_found"]))
        tvs["scratch"].append(np.asarray(g.get("eval/tv", np.full(a.num_iterations, np.nan))))
        print(f"seed {seed}: modes adapted {curves['adapted'][-1][-1]}, scratch {curves['scratch'][-1][-1]} "
              f"({secs['adapted'][-1]:.0f}s / {secs['scratch'][-1]:.0f}s)", flush=True)
    num_modes = int(env.mode_hits(env.initial_obj()[None], ep).shape[-1])
    cur = {k_: np.stack(v) for k_, v in curves.items()}
    np.savez(os.path.join(workdir, "curves.npz"), **cur,
             adapted_reward_queries=np.stack(queries), tv_adapted=np.stack(tvs["adapted"]),
             tv_scratch=np.stack(tvs["scratch"]))

    def first_all(x):  # first iteration at which every mode has been found (-1: never)
        hit = np.nonzero(x >= num_modes)[0]
        return int(hit[0]) if len(hit) else -1

    checkpoints = [i for i in (10, 25, 50, 100, 250, 500, 1000, 2000, 4000) if i <= a.num_iterations]
    summary = {"env": env.name, "num_modes": num_modes, **info, "batch_size": a.batch_size,
               "iterations": a.num_iterations, "seeds": list(range(c.first_seed, c.first_seed + c.seeds)),
               "config": c.to_dict()}
    if "direct" in cur:
        summary["direct"] = {"iters_to_all_modes": [first_all(r) for r in cur["direct"]],
                             "modes_at": {str(i): [float(cur["direct"][:, i - 1].mean()),
                                                   float(cur["direct"][:, i - 1].std())] for i in checkpoints}}
    for name in ("adapted", "scratch"):
        x = cur[name]
        summary[name] = {
            "modes_at": {str(i): [float(x[:, i - 1].mean()), float(x[:, i - 1].std())] for i in checkpoints},
            "iters_to_all_modes": [first_all(r) for r in x],
            "seconds_per_run": float(np.mean(secs[name])),
            "final_tv": [float(t[~np.isnan(t)][-1]) if np.any(~np.isnan(t)) else None for t in tvs[name]],
        }
    summary["adapted"]["reward_queries_total"] = float(np.mean([q[-1] for q in queries]))
    summary["scratch"]["reward_queries_total"] = float(a.num_iterations * a.batch_size)
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    _plot_adaptation(cur, np.stack(queries), tvs, a, env, num_modes, workdir, info.get("direct_conversion_tv"))
    print(json.dumps({k_: v for k_, v in summary.items() if k_ != "config"}, default=str))


def _make_direct_sampler(env, ep, dag, batch_size, num_iterations):
    """`run(key, log_pf [S, A]) -> modes found per iteration` of a fixed tabulated policy."""

    def policy(table, obs):
        row = table[jnp.argmax(obs @ dag.obs.T, -1)]
        return PolicyOutput(row, jnp.zeros((obs.shape[0], env.num_backward_actions)), jnp.zeros(obs.shape[0]))

    num_modes = int(env.mode_hits(env.initial_obj()[None], ep).shape[-1])

    def run(key, log_pf):
        def it(found, k):
            tr = forward_rollout(k, log_pf, env, ep, policy, batch_size)
            found = modes_found(found, env.mode_hits(tr.terminal_obj, ep))
            return found, found.sum()

        return jax.lax.scan(it, jnp.zeros((num_modes,), bool), jax.random.split(key, num_iterations))[1]

    return run


def _plot_adaptation(cur, queries, tvs, a, env, num_modes, workdir, direct_tv=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    it = np.arange(1, a.num_iterations + 1)
    has_tv = np.any(~np.isnan(np.stack(tvs["adapted"])))
    fig, axes = plt.subplots(1, 3 if has_tv else 2, figsize=(13 if has_tv else 9, 3.6))
    colors = {"adapted": "C0", "scratch": "C3", "direct": "0.5"}
    labels = {"adapted": "OC-GFN adapted (frozen + predictor)", "scratch": "TB from scratch",
              "direct": "exact direct conversion (enumerates y)"}
    for name, x in cur.items():
        mu, sd = x.mean(0), x.std(0)
        axes[0].plot(it * a.batch_size, mu, c=colors[name], label=labels[name])
        axes[0].fill_between(it * a.batch_size, mu - sd, mu + sd, color=colors[name], alpha=0.2)
    axes[0].set_xscale("log")
    axes[0].set_xlabel(f"trajectories sampled (= iterations x {a.batch_size})")
    axes[0].set_ylabel(f"modes found (of {num_modes})")
    axes[0].legend(fontsize=7)
    q = queries.mean(0)
    axes[1].plot(q, cur["adapted"].mean(0), c=colors["adapted"], label=labels["adapted"])
    axes[1].plot(it * a.batch_size, cur["scratch"].mean(0), c=colors["scratch"], label=labels["scratch"])
    axes[1].set_xscale("log")
    axes[1].set_xlabel("reward evaluations (cumulative)")
    axes[1].set_ylabel("modes found (mean over seeds)")
    if has_tv:
        if direct_tv is not None:
            axes[2].axhline(direct_tv, ls="--", c=colors["direct"], label=labels["direct"])
        for name in ("adapted", "scratch"):
            t = np.stack(tvs[name])
            ok = ~np.isnan(t[0])
            axes[2].plot(it[ok], t[:, ok].mean(0), "o-", c=colors[name], ms=3, label=labels[name])
        axes[2].set_yscale("log")
        axes[2].set_xlabel("iteration")
        axes[2].set_ylabel("exact TV to R/Z")
    fig.suptitle(f"{env.name}: {cur['adapted'].shape[0]} seeds, mean +- std")
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, "modes.png"), dpi=120)


if __name__ == "__main__":
    app.run(main)
