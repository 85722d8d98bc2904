"""Meta-train LPG / TA-LPG on LPG's random grid worlds with ES or meta-gradients, then measure how
much the discovered targets change with training progress n/N.

    nice -n 10 python experiments/meta_lpg.py --config=experiments/configs/meta_lpg.py:ta_lpg_es
    nice -n 10 python experiments/meta_lpg.py --config=experiments/configs/meta_lpg.py:ta_lpg_metagrad

Writes `<workdir>/metrics.jsonl`, `params.npz`, `targets.json` (target variation with progress and the
final evaluation) and `config.json`; experiments/eval_lpg.py compares runs, plots the targets over
the lifetime and evaluates transfer to MinAtar.

Target variation (for a temporally-aware η): on a fixed batch of trajectories collected mid-lifetime,
π̂_t(p) is recomputed for p in {0, 0.1, ..., 1}; the reported `pi_hat_progress_variation` is
mean_t std_p π̂_t(p) / mean_p std_t π̂_t(p) (0 = progress is ignored; 1 = progress moves targets as
much as the trajectory does), and `y_hat_progress_tv` the mean total-variation distance between
ŷ_t(p) and ŷ_t(0.5).
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from lfx.meta import es, lpg, lpg_analysis, metagrad  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "meta_lpg.py:ta_lpg_es")
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder (default runs/meta_lpg_<variant>).")


def lpg_config(c) -> lpg.LPGConfig:
    return lpg.LPGConfig(
        hidden_size=c.hidden_size, temporally_aware=c.temporally_aware, env_name=c.env_name,
        random_levels=c.random_levels, num_envs=c.num_envs, num_steps=c.num_steps,
        max_updates=c.max_updates, agent_hidden=c.agent_hidden, agent_lr=c.agent_lr,
    )


def evaluate(cfg, params, key, num=16):
    """Final reward rate of fresh agents on held-out random levels (lifetime = max_updates)."""
    train = lpg.make_lpg_train(cfg)
    k1, k2 = jax.random.split(key)
    _, m = jax.jit(jax.vmap(train, in_axes=(0, None, None, 0)))(
        jax.random.split(k1, num), params, float(cfg.max_updates), jax.random.split(k2, num)
    )
    rate = lpg.masked_final_mean(m["train/reward_rate"], m["train/active"], 0.2)
    return float(rate.mean()), float(rate.std() / np.sqrt(num))


def main(argv):
    del argv
    c = _CONFIG.value
    variant = ("ta_" if c.temporally_aware else "") + "lpg_" + c.estimator
    workdir = _WORKDIR.value or f"runs/meta_lpg_{variant}"
    os.makedirs(workdir, exist_ok=True)
    cfg = lpg_config(c)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(c.to_json_best_effort(indent=1))
    key = jax.random.key(c.seed)
    init = lpg.init_lpg(jax.random.key(c.seed + 1), cfg)
    t0 = time.time()
    if c.estimator == "es":
        fit = lpg.make_lpg_fitness(cfg, lifetime_range=tuple(c.lifetime_range) or None)
        es_cfg = es.ESConfig(population_size=c.population_size, num_generations=c.num_generations,
                             learning_rate=c.es_lr, sigma=c.sigma, lr_decay=1.0, sigma_decay=1.0)
        params, _, hist = es.meta_train_es(key, fit, init, es_cfg, workdir=workdir,
                                           max_minutes=c.max_minutes)
    else:
        a_init, inner_update, meta_loss = lpg.make_lpg_metagrad(cfg)
        step, opt = metagrad.make_metagrad_step(inner_update, meta_loss, window=c.window,
                                                optimizer=optax.adam(c.meta_lr))
        step = jax.jit(step)
        a_init = jax.jit(a_init)
        params, opt_state = init, opt.init(init)
        k, key = jax.random.split(key)
        state = a_init(k, jax.random.fold_in(k, 1))
        hist = []
        with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
            for i in range(c.metagrad_steps):
                key, k_step, k_new = jax.random.split(key, 3)
                if int(state.update_idx) + c.window > cfg.max_updates:  # lifetime over: new agent/level
                    state = a_init(k_new, jax.random.fold_in(k_new, 1))
                params, opt_state, state, m = step(params, opt_state, state, k_step)
                row = {"step": i + 1, "time_s": time.time() - t0, **{k: float(v) for k, v in m.items()}}
                hist.append(row)
                f.write(json.dumps(row) + "\n")
                if time.time() - t0 > 60 * c.max_minutes:
                    break
    wall = time.time() - t0
    np.savez(os.path.join(workdir, "params.npz"),
             **{"/".join(map(str, p)): np.asarray(v) for p, v in
                jax.tree_util.tree_flatten_with_path(params)[0]})
    out = {
        "variant": variant,
        "command": "python " + " ".join(sys.argv),
        "steps_done": len(hist),
        "wall_time_s": wall,
        "eval_final_reward_rate_init": evaluate(cfg, init, jax.random.key(777)),
        "eval_final_reward_rate_trained": evaluate(cfg, params, jax.random.key(777)),
    }
    if cfg.temporally_aware:
        out["targets_init"] = lpg_analysis.target_variation(cfg, init, jax.random.key(5))
        out["targets_trained"] = lpg_analysis.target_variation(cfg, params, jax.random.key(5))
    with open(os.path.join(workdir, "targets.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({k: v for k, v in out.items() if k not in ("targets_init", "targets_trained")}))
    if cfg.temporally_aware:
        print("variation init", out["targets_init"]["pi_hat_progress_variation"],
              "trained", out["targets_trained"]["pi_hat_progress_variation"])


if __name__ == "__main__":
    app.run(main)
