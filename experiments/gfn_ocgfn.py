"""OC-GFN: reward-free pre-training (success rate) and adaptation to a downstream reward.

    python experiments/gfn_ocgfn.py --config=experiments/configs/gfn_ocgfn.py:hypergrid
    python experiments/gfn_ocgfn.py --config=experiments/configs/gfn_ocgfn.py:bitseq
    python experiments/gfn_ocgfn.py --config=experiments/configs/gfn_ocgfn.py:adapt_hypergrid
    python experiments/gfn_ocgfn.py --config=experiments/configs/gfn_ocgfn.py:adapt_bitseq
    python experiments/gfn_ocgfn.py --workdir=runs/gfn_ocgfn --resume     # continue a killed run

Pre-training method: `--config.method=paper` (the default: GAFlowNet explorer positives, on-policy
negatives, outcome teleportation) or `--config.method=relabel` (hindsight relabelling, DB + TB; the
figures recorded before issue 19); see `lfx.gfn.ocgfn`.

Pre-training (`mode = "pretrain"`): success rate = fraction of `eval_batch` on-policy conditional
samples (epsilon 0) whose terminal object equals the requested outcome y (drawn uniformly); the
seeds run as one vmapped harness run in `<workdir>/pretrain/`. Writes `summary.json` (final
success, mean and std over seeds) and `success.png`.

Adaptation (`mode = "adapt"`): pre-trains one OC-GFN (`<workdir>/pretrain/`, saved as
`pretrained.msgpack`) or loads `pretrained_path`, freezes it, trains the amortised predictor
(`lfx.gfn.ocgfn_adapt`, `<workdir>/adapted/`) on the downstream reward for each seed, and a TB
GFlowNet from scratch with the same network size, batch and exploration (`<workdir>/scratch/`);
records modes discovered vs iterations / samples / reward queries. Writes `curves.npz`,
`summary.json`, `modes.png`. Every sub-run checkpoints; `--resume` continues each exactly.
"""

from __future__ import annotations

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags, logging
from flax import serialization

from lfx.experiment import (
    ConfigError,
    WorkdirError,
    check_finite_hparams,
    cli,
    from_configdict,
    stack_hparams,
)
from lfx.gfn import ocgfn, ocgfn_adapt
from lfx.gfn import train as gfn_train
from lfx.gfn.experiment import (
    OCGFNAdaptSettings,
    OCGFNRun,
    as_dict,
    run_recipe,
    sub_runs_have_checkpoints,
)
from lfx.gfn.metrics import build_dag, modes_found, terminal_distribution, total_variation
from lfx.gfn.networks import PolicyOutput
from lfx.gfn.rollout import forward_rollout

FLAGS = cli.define_flags("gfn_ocgfn.py:hypergrid")
flags.DEFINE_integer("stop_after", None, "Testing hook: stop once this many iterations of the run "
                     "being trained are done, as if it had been killed.")


class Stopped(Exception):
    """--stop_after ended a sub-run early."""


def build(config):
    """Config -> (OCGFNConfig, OCGFNRun, OCGFNHParams, OCGFNAdaptSettings, env, env_params); checks."""
    static, run, hp, adapt = from_configdict(config, ocgfn.OCGFNConfig, OCGFNRun,
                                             hparams=ocgfn.OCGFNHParams, adapt=OCGFNAdaptSettings)
    run.validate()
    try:
        static.validate()
        if static.env not in gfn_train.GFN_ENVS:
            raise ValueError(f"config.env: unknown {static.env!r}; choose one of "
                             f"{sorted(gfn_train.GFN_ENVS)}.")
        env, env_params = gfn_train.GFN_ENVS[static.env](**dict(static.env_kwargs))
        check_finite_hparams(hp)
        hp.validate()
        if run.mode == "adapt":
            a = adapt
            for name in ("batch_size", "num_iterations", "num_outcomes", "eval_every"):
                if getattr(a, name) < 1:
                    raise ValueError(f"config.adapt.{name} must be >= 1, got {getattr(a, name)}.")
            adapt_hp(a).validate()
            scratch_hp(a).validate()
            ocgfn_adapt.descendant_slot_mask(env, env.initial_obj())
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err)) from None
    return static, run, hp, adapt, env, env_params


def adapt_hp(a):
    return ocgfn_adapt.AdaptHParams(lr=a.lr, epsilon=a.epsilon, outcome_epsilon=a.outcome_epsilon)


def scratch_hp(a):
    return gfn_train.GFNHParams(lr=a.lr, logz_lr=a.logz_lr, epsilon=a.epsilon)


def seed_keys(first: int, n: int):
    return jax.vmap(jax.random.key)(first + jnp.arange(n))


def sub_run(recipe, keys, hp, wd, name, fingerprint, run_cfg, *args, metric="train/loss"):
    state, metrics, complete = run_recipe(
        recipe, keys, stack_hparams([hp]), wd.file(name), fingerprint, run_cfg, *args,
        resume=FLAGS.resume, progress=FLAGS.progress, stop_after=FLAGS.stop_after,
        progress_metric=metric, tensorboard=FLAGS.tensorboard, wandb=FLAGS.wandb)
    if not complete:
        raise Stopped(name)
    return state, {k: v[0] for k, v in metrics.items()}  # one setting: [S, T]


def pretrain_mode(static, run, hp, env, ep, wd, fingerprint):
    recipe = ocgfn.make_train(static, env, ep)
    _, m = sub_run(recipe, seed_keys(run.first_seed, run.seeds), hp, wd, "pretrain", fingerprint,
                   run.run_config(), metric="pretrain/loss")
    s = np.asarray(m["pretrain/success"], np.float64)  # [S, T], NaN between evaluations
    finals = s[:, -1].tolist()
    seeds = list(range(run.first_seed, run.first_seed + run.seeds))
    for seed, f in zip(seeds, finals, strict=True):
        print(f"seed {seed}: success {f:.3f}", flush=True)
    summary = {"env": env.name, "method": static.method, "success_mean": float(np.mean(finals)),
               "success_std": float(np.std(finals)), "success_per_seed": finals, "seeds": seeds,
               "config": fingerprint}
    wd.write_json("summary.json", summary)
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    steps = np.nonzero(~np.isnan(s[0]))[0]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for row in s:
        ax.plot(steps, row[steps], alpha=0.7)
    ax.axhline(0.95, ls="--", c="k")
    ax.set_xlabel("pre-training iteration")
    ax.set_ylabel("success rate")
    ax.set_title(f"OC-GFN on {env.name}, {run.seeds} seeds")
    fig.tight_layout()
    fig.savefig(wd.file("success.png"), dpi=120)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}))


def pretrained(static, run, hp, env, ep, wd, fingerprint):
    """The frozen OC-GFN: loaded from `pretrained_path` if set, else pre-trained (a sub-run)."""
    recipe = ocgfn.make_train(static, env, ep)
    if run.pretrained_path:
        like = recipe.init(jax.random.key(0), hp).params
        with open(run.pretrained_path, "rb") as f:
            params = serialization.from_bytes(like, f.read())
        info = {"pretrained_from": run.pretrained_path}
    else:
        one = OCGFNRun(**{**as_dict(run), "seeds": 1}).run_config()
        t0 = time.time()
        state, _ = sub_run(recipe, seed_keys(run.pretrain_seed, 1), hp, wd, "pretrain",
                           {**fingerprint, "sub": "pretrain"}, one, metric="pretrain/loss")
        params = jax.tree.map(lambda x: x[0, 0], state.params)
        path = wd.file("pretrained.msgpack")
        with open(path, "wb") as f:
            f.write(serialization.to_bytes(params))
        info = {"pretrained_to": path, "pretrain_seconds": time.time() - t0}
    info["pretrain_success"] = float(jax.jit(recipe.success_rate)(jax.random.key(10_000), params))
    print(f"OC-GFN: {info}", flush=True)
    return params, recipe.apply, info


def adapt_mode(static, run, hp, a, env, ep, wd, fingerprint):
    """Adapted OC-GFN (frozen + amortised predictor) vs TB from scratch: modes vs steps, seeds."""
    pre_params, cond_apply, info = pretrained(static, run, hp, env, ep, wd, fingerprint)
    dag = build_dag(env, ep) if run.exact_eval else None
    if dag is not None:
        ys = np.nonzero(np.asarray(dag.fwd_mask[:, -1]))[0]
        _, log_pf = jax.jit(lambda p: ocgfn_adapt.direct_conversion(
            dag, env, ep, cond_apply, p, jnp.asarray(dag.states[ys]), dag.log_r[ys]))(pre_params)
        p_t = terminal_distribution(dag, log_pf)
        info["direct_conversion_tv"] = float(total_variation(dag.target, p_t))
        print(f"direct conversion with the learned OC-GFN: TV {info['direct_conversion_tv']:.4f}", flush=True)
    eval_every = a.eval_every if dag is not None else 0
    acfg = ocgfn_adapt.AdaptConfig(batch_size=a.batch_size, num_iterations=a.num_iterations,
                                   hidden=tuple(static.hidden), num_outcomes=a.num_outcomes,
                                   eval_every=eval_every)
    gcfg = gfn_train.GFNConfig(env=static.env, env_kwargs=static.env_kwargs, loss="tb",
                               batch_size=a.batch_size, num_iterations=a.num_iterations,
                               hidden=tuple(static.hidden), eval_every=eval_every,
                               rollout="padded")  # the rollout of the recorded results
    seeds = list(range(run.first_seed, run.first_seed + run.seeds))
    keys = seed_keys(1000 + run.first_seed, run.seeds)
    run_cfg = run.run_config()
    secs = {}
    t0 = time.time()
    _, m = sub_run(ocgfn_adapt.make_train(acfg, env, ep, cond_apply, dag), keys, adapt_hp(a), wd,
                   "adapted", {**fingerprint, "sub": "adapted"}, run_cfg, pre_params,
                   metric="adapt/loss")
    secs["adapted"] = time.time() - t0
    t0 = time.time()
    _, g = sub_run(gfn_train.make_train(gcfg, env, ep), keys, scratch_hp(a), wd, "scratch",
                   {**fingerprint, "sub": "scratch"}, run_cfg)
    secs["scratch"] = time.time() - t0
    nan = np.full((run.seeds, a.num_iterations), np.nan)
    cur = {"adapted": np.asarray(m["adapt/modes_found"]), "scratch": np.asarray(g["train/modes_found"])}
    queries = np.cumsum(np.asarray(m["adapt/reward_queries"]), -1)
    tvs = {"adapted": np.asarray(m.get("eval/tv", nan)), "scratch": np.asarray(g.get("eval/tv", nan))}
    if dag is not None:  # reference: sampling from the exact direct conversion (enumerates outcomes)
        direct = jax.jit(_make_direct_sampler(env, ep, dag, a.batch_size, a.num_iterations))
        cur["direct"] = np.stack([np.asarray(direct(jax.random.key(1000 + sd), log_pf)) for sd in seeds])
    for i, seed in enumerate(seeds):
        print(f"seed {seed}: modes adapted {cur['adapted'][i, -1]}, scratch {cur['scratch'][i, -1]}",
              flush=True)
    num_modes = int(env.mode_hits(env.initial_obj()[None], ep).shape[-1])
    np.savez(wd.file("curves.npz"), **cur, adapted_reward_queries=queries,
             tv_adapted=tvs["adapted"], tv_scratch=tvs["scratch"])

    def first_all(x):  # first iteration at which every mode has been found (-1: never)
        hit = np.nonzero(x >= num_modes)[0]
        return int(hit[0]) if len(hit) else -1

    checkpoints = [i for i in (10, 25, 50, 100, 250, 500, 1000, 2000, 4000) if i <= a.num_iterations]
    summary = {"env": env.name, "method": static.method, "num_modes": num_modes, **info, "batch_size": a.batch_size,
               "iterations": a.num_iterations, "seeds": seeds, "config": fingerprint}
    if "direct" in cur:
        summary["direct"] = {"iters_to_all_modes": [first_all(r) for r in cur["direct"]],
                             "modes_at": {str(i): [float(cur["direct"][:, i - 1].mean()),
                                                   float(cur["direct"][:, i - 1].std())] for i in checkpoints}}
    for name in ("adapted", "scratch"):
        x = cur[name]
        summary[name] = {
            "modes_at": {str(i): [float(x[:, i - 1].mean()), float(x[:, i - 1].std())] for i in checkpoints},
            "iters_to_all_modes": [first_all(r) for r in x],
            "seconds_all_seeds": secs[name],
            "final_tv": [float(t[~np.isnan(t)][-1]) if np.any(~np.isnan(t)) else None for t in tvs[name]],
        }
    summary["adapted"]["reward_queries_total"] = float(np.mean(queries[:, -1]))
    summary["scratch"]["reward_queries_total"] = float(a.num_iterations * a.batch_size)
    wd.write_json("summary.json", summary)
    _plot_adaptation(cur, queries, tvs, a, env, num_modes, wd.file("modes.png"),
                     info.get("direct_conversion_tv"))
    print(json.dumps({k_: v for k_, v in summary.items() if k_ != "config"}, default=str))


def _make_direct_sampler(env, ep, dag, batch_size, num_iterations):
    """`run(key, log_pf [S, A]) -> modes found per iteration` of a fixed tabulated policy."""

    def policy(table, obs):
        row = table[jnp.argmax(obs @ dag.obs.T, -1)]
        bwd = jnp.zeros((obs.shape[0], env.num_backward_actions))
        return PolicyOutput(row, bwd, jnp.zeros(obs.shape[0]))

    num_modes = int(env.mode_hits(env.initial_obj()[None], ep).shape[-1])

    def run(key, log_pf):
        def it(found, k):
            tr = forward_rollout(k, log_pf, env, ep, policy, batch_size)
            found = modes_found(found, env.mode_hits(tr.terminal_obj, ep))
            return found, found.sum()

        return jax.lax.scan(it, jnp.zeros((num_modes,), bool), jax.random.split(key, num_iterations))[1]

    return run


def _plot_adaptation(cur, queries, tvs, a, env, num_modes, path, direct_tv=None):
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    it = np.arange(1, a.num_iterations + 1)
    has_tv = np.any(~np.isnan(tvs["adapted"]))
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
    axes[1].plot(queries.mean(0), cur["adapted"].mean(0), c=colors["adapted"], label=labels["adapted"])
    axes[1].plot(it * a.batch_size, cur["scratch"].mean(0), c=colors["scratch"], label=labels["scratch"])
    axes[1].set_xscale("log")
    axes[1].set_xlabel("reward evaluations (cumulative)")
    axes[1].set_ylabel("modes found (mean over seeds)")
    if has_tv:
        if direct_tv is not None:
            axes[2].axhline(direct_tv, ls="--", c=colors["direct"], label=labels["direct"])
        for name in ("adapted", "scratch"):
            t = tvs[name]
            ok = ~np.isnan(t[0])
            axes[2].plot(it[ok], t[:, ok].mean(0), "o-", c=colors[name], ms=3, label=labels[name])
        axes[2].set_yscale("log")
        axes[2].set_xlabel("iteration")
        axes[2].set_ylabel("exact TV to R/Z")
    fig.suptitle(f"{env.name}: {cur['adapted'].shape[0]} seeds, mean +- std")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    config = cli.get_config()
    try:
        static, run, hp, adapt, env, ep = build(config)
        fingerprint = {"ocgfn": as_dict(static), "run": as_dict(run), "hparams": as_dict(hp)}
        if run.mode == "adapt":
            fingerprint["adapt"] = as_dict(adapt)
        wd = cli.open_workdir(f"gfn_ocgfn_{run.mode}_{static.env}", fingerprint,
                              has_checkpoints=sub_runs_have_checkpoints)
    except (ConfigError, WorkdirError) as err:
        sys.exit(f"error: {err}")
    with wd:
        try:
            if run.mode == "pretrain":
                pretrain_mode(static, run, hp, env, ep, wd, fingerprint)
            else:
                adapt_mode(static, run, hp, adapt, env, ep, wd, fingerprint)
        except Stopped as stop:
            print(f"Stopped during {stop} (--stop_after); continue with --resume.", flush=True)


if __name__ == "__main__":
    cli.run(main)
