"""EvoLLM vs random search, Gaussian hill climbing, OpenAI-ES, SNES and CMA-ES on BBOB.

    python experiments/es_bbob.py --config=experiments/configs/es_bbob.py:baselines
    python experiments/es_bbob.py --config=experiments/configs/es_bbob.py:smollm2 --config.dims=2
    python experiments/es_bbob.py --config=experiments/configs/es_bbob.py:ablate_sort
    python experiments/es_bbob.py --config=experiments/configs/es_bbob.py:smollm2_lora --config.dims=2 \
        --config.evollm.adapter_path=runs/evollm_finetune/adapters.npz   # LoRA-fine-tuned SmolLM2

Every (function, seed) pair is one task (x_opt, f_opt, rotations from `bbob.make_task(fn, D, seed)`);
all tasks of a dimension run as ONE jitted vmapped `lax.scan` per strategy; for EvoLLM each
generation issues one batched LM call for all tasks and blocks (chunked to `evollm.max_rows`).
Writes `<workdir>/results.jsonl` (one line per strategy/dim/fn/seed with the best-regret curve) and
`<workdir>/summary.md` (median final regret per function, EvoLLM win rates).
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

from experiments.es_common import build_strategy, load_lm
from lfx.es import bbob, make_search

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "es_bbob.py:baselines")
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder (default runs/es_bbob_<tag>).")


def load_evollm_lm(e):
    """EvoLLM's LM from the `evollm` config block; SmolLM2 with LoRA adapters merged when
    `adapter_path` is set (written by experiments/evollm_finetune.py)."""
    if not e.adapter_path:
        return load_lm(e.lm, e.lm_path)
    if e.lm != "smollm2":
        raise ValueError(f"evollm.adapter_path is for SmolLM2 adapters; set evollm.lm=smollm2 "
                         f"(got {e.lm!r}) or clear adapter_path.")
    if not os.path.exists(e.adapter_path):
        raise FileNotFoundError(f"No LoRA adapters at {e.adapter_path!r}; run "
                                f"`python experiments/evollm_finetune.py --workdir=<dir>` and pass "
                                f"--config.evollm.adapter_path=<dir>/adapters.npz.")
    from lfx.es.evollm import lfx_lm
    from lfx.lm import load_smollm2
    from lfx.lm.lora import merge_lora_file

    params, config, tok = load_smollm2()
    return lfx_lm(merge_lora_file(params, e.adapter_path), config, tok)


def run_strategy(strategy, fitness, tasks, keys, dim, cfg, chunk):
    search = jax.jit(jax.vmap(make_search(strategy, fitness, cfg.num_generations), in_axes=(0, None, None, 0)))
    mean = jnp.full(dim, cfg.init_mean, jnp.float32)
    n = keys.shape[0]
    curves, extra = [], []
    for s in range(0, n, chunk):
        sl = slice(s, min(n, s + chunk))
        _, m = search(keys[sl], mean, strategy.default_params,
                      jax.tree.map(lambda t, sl=sl: t[sl], tasks))
        curves.append(np.asarray(m["best_aux"]))
        extra.append({k: np.asarray(v) for k, v in m.items() if k.startswith("evollm/")})
    merged = {k: np.concatenate([e[k] for e in extra]) for k in extra[0]} if extra[0] else {}
    return np.concatenate(curves), merged


def main(_):
    cfg = _CONFIG.value
    workdir = _WORKDIR.value or f"runs/es_bbob_{cfg.tag}"
    os.makedirs(workdir, exist_ok=True)
    fns = cfg.fns.split(",")
    dims = [int(d) for d in cfg.dims.split(",")]
    names = cfg.strategies.split(",")
    lm = load_evollm_lm(cfg.evollm) if "evollm" in names else None
    variants = [("", None)]
    if cfg.ablation:
        field, values = cfg.ablation.split("=")
        variants = [(f"{field}={v}", (field, v)) for v in values.split(",")]
    out = open(os.path.join(workdir, "results.jsonl"), "w")  # noqa: SIM115 (closed below)
    rows = []
    for dim in dims:
        fitness = bbob.make_fitness(tuple(fns), dim)
        tasks_list, meta = [], []
        for i, fn in enumerate(fns):
            for seed in range(cfg.num_seeds):
                tasks_list.append(bbob.make_task(fn, dim, seed).replace(fn_id=jnp.int32(i)))
                meta.append((fn, seed))
        tasks = jax.tree.map(lambda *t: jnp.stack(t), *tasks_list)
        keys = jnp.stack([jax.random.fold_in(jax.random.key(1000 + s), i) for i, (_, s) in enumerate(meta)])
        for name in names:
            for label, override in variants:
                if override is not None:
                    field, value = override
                    target = cfg if field in cfg else cfg.evollm
                    target[field] = type(target[field])(value)
                strategy = build_strategy(name, cfg, dim, lm)
                chunk = len(meta)
                if name == "evollm":
                    chunk = max(1, cfg.evollm.max_rows // strategy.num_blocks)
                t0 = time.time()
                curves, extra = run_strategy(strategy, fitness, tasks, keys, dim, cfg, chunk)
                wall = time.time() - t0
                tag = name + (f"[{label}]" if label else "")
                print(f"dim={dim} {tag}: {wall:.1f}s, median final regret "
                      f"{np.median(curves[:, -1]):.3g}", flush=True)
                for j, (fn, seed) in enumerate(meta):
                    row = {"dim": dim, "fn": fn, "seed": seed, "strategy": tag,
                           "final_regret": float(curves[j, -1]), "curve": curves[j].tolist(),
                           "wall_s_all_tasks": wall}
                    for k, v in extra.items():
                        row[k] = int(v[j].sum())
                    rows.append(row)
                    out.write(json.dumps(row) + "\n")
                out.flush()
    out.close()
    write_summary(rows, os.path.join(workdir, "summary.md"), cfg)


def write_summary(rows, path, cfg):
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    lines = [(f"config: {cfg.tag}; N={cfg.population_size}, G={cfg.num_generations}, "
              f"seeds={cfg.num_seeds}; cells: median over seeds of the best regret f(x)-f_opt\n")]
    for dim in sorted({r["dim"] for r in rows}):
        lines.append(f"\n### {dim}-D\n\n| function | " + " | ".join(strategies) + " |")
        lines.append("|---|" + "---|" * len(strategies))
        for fn in dict.fromkeys(r["fn"] for r in rows):
            cells = []
            for s in strategies:
                v = [r["final_regret"] for r in rows if r["dim"] == dim and r["fn"] == fn and r["strategy"] == s]
                cells.append(f"{np.median(v):.3g}" if v else "-")
            lines.append(f"| {fn} | " + " | ".join(cells) + " |")
        # mean rank across strategies per (fn, seed) task
        ranks = {s: [] for s in strategies}
        tasks = {(r["fn"], r["seed"]) for r in rows if r["dim"] == dim}
        for t in tasks:
            vals = {r["strategy"]: r["final_regret"] for r in rows if r["dim"] == dim and (r["fn"], r["seed"]) == t}
            order = sorted(vals, key=vals.get)
            for s in vals:
                ranks[s].append(order.index(s) + 1)
        lines.append("| mean rank | " + " | ".join(f"{np.mean(ranks[s]):.2f}" if ranks[s] else "-" for s in strategies) + " |")
        fallbacks = [r.get("evollm/fallback_coords") for r in rows if r["dim"] == dim and "evollm/fallback_coords" in r]
        if fallbacks:
            lines.append(f"\nEvoLLM fallback coordinates (sum over runs and generations): {sum(fallbacks)}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
