"""EvoLLM vs random search, Gaussian hill climbing, OpenAI-ES, SNES and CMA-ES on BBOB.

    python experiments/es_bbob.py --config=experiments/configs/es_bbob.py:baselines
    python experiments/es_bbob.py --config=experiments/configs/es_bbob.py:smollm2 --config.dims=2
    python experiments/es_bbob.py --config=experiments/configs/es_bbob.py:ablate_sort
    python experiments/es_bbob.py --config=experiments/configs/es_bbob.py:smollm2_lora --config.dims=2 \
        --config.evollm.adapter_path=runs/evollm_finetune/adapters.npz   # LoRA-fine-tuned SmolLM2
    python experiments/es_bbob.py --workdir=runs/es_bbob_x --resume    # finish a killed run

Every (function, seed) pair is one task (x_opt, f_opt, rotations from `bbob.make_task(fn, D, seed)`);
the tasks of a dimension run as one jitted vmapped `lax.scan` per strategy (for EvoLLM in batches
of `evollm.max_rows // blocks` tasks, each generation one batched LM call). Each (dim, strategy,
function, seed) is one cell of `<workdir>/results.jsonl` (`lfx.experiment.CellLog`, the
best-regret curve): a killed run continued with `--resume` computes only the missing cells, with
the same batches, so its results equal an uninterrupted run's. `<workdir>/summary.md`: median final
regret per function and mean ranks. Every name, number and file is checked before the workdir
is opened.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags, logging

from lfx.es import bbob, make_search
from lfx.es.evollm.models import load_language_model
from lfx.es.experiment import (
    EVOLLM,
    BBOBSettings,
    ESSettings,
    ablation_variants,
    build_strategy,
    parse_dims,
    split_names,
    validate_settings,
)
from lfx.experiment import CellLog, ConfigError, cli, from_configdict

FLAGS = cli.define_flags("es_bbob.py:baselines")
flags.DEFINE_integer("stop_after_cells", None,
                     "(Test hook) SIGKILL this process once this many new cells are recorded.")


def build(config):
    """Config -> (BBOBSettings, ESSettings, fns, dims, strategy names); validates everything."""
    bbob_s, es_s = from_configdict(config, BBOBSettings, ESSettings)
    fns = split_names(bbob_s.fns, "BBOB function", bbob.BBOB_FNS, field="fns")
    dims = parse_dims(bbob_s.dims)
    if bbob_s.num_seeds < 1:
        raise ConfigError(f"config.num_seeds must be >= 1, got {bbob_s.num_seeds}.")
    names = validate_settings(es_s, dims)
    return bbob_s, es_s, fns, dims, names


def make_tasks(fns, dim: int, num_seeds: int):
    """All (fn, seed) tasks of one dimension, stacked, their run keys, and their (fn, seed) list."""
    tasks, meta = [], []
    for i, fn in enumerate(fns):
        for seed in range(num_seeds):
            tasks.append(bbob.make_task(fn, dim, seed).replace(fn_id=jnp.int32(i)))
            meta.append((fn, seed))
    stacked = jax.tree.map(lambda *t: jnp.stack(t), *tasks)
    keys = jnp.stack([jax.random.fold_in(jax.random.key(1000 + s), i)
                      for i, (_, s) in enumerate(meta)])
    return stacked, keys, meta


class Batches:
    """Runs a (dim, strategy) group in fixed batches of tasks, each computed at most once."""

    def __init__(self, strategy, fitness, tasks, keys, dim, settings, batch):
        self.search = jax.jit(jax.vmap(make_search(strategy, fitness, settings.num_generations),
                                       in_axes=(0, None, None, 0)))
        self.strategy, self.tasks, self.keys, self.batch = strategy, tasks, keys, batch
        self.mean = jnp.full(dim, settings.init_mean, jnp.float32)
        self.done: dict[int, tuple] = {}

    def row(self, j: int) -> tuple[np.ndarray, dict, float, int]:
        """(best-regret curve [G], EvoLLM counters, batch wall seconds, batch size) of task j."""
        b = j // self.batch
        if b not in self.done:
            sl = slice(b * self.batch, min(self.keys.shape[0], (b + 1) * self.batch))
            t0 = time.time()
            _, m = self.search(self.keys[sl], self.mean, self.strategy.default_params,
                               jax.tree.map(lambda t: t[sl], self.tasks))
            curves = np.asarray(m["best_aux"])
            extra = {k: np.asarray(v) for k, v in m.items() if k.startswith("evollm/")}
            self.done[b] = (curves, extra, time.time() - t0, sl.start)
        curves, extra, wall, start = self.done[b]
        i = j - start
        return curves[i], {k: int(v[i].sum()) for k, v in extra.items()}, wall, curves.shape[0]


def cells(bbob_s, es_s, fns, dims, names, lm):
    """[(cell id, fn)] in run order: dims, strategies x ablation values, fns x seeds."""
    out = []
    for dim in dims:
        fitness = bbob.make_fitness(tuple(fns), dim)
        tasks, keys, meta = make_tasks(fns, dim, bbob_s.num_seeds)
        for name in names:
            for label, s in ablation_variants(es_s):
                tag = name + (f"[{label}]" if label else "")
                strategy = build_strategy(name, s, dim, lm)
                batch = len(meta)
                if name == EVOLLM:
                    batch = max(1, s.evollm.max_rows // strategy.num_blocks)
                group = Batches(strategy, fitness, tasks, keys, dim, s, batch)
                for j, (fn, seed) in enumerate(meta):
                    def compute(j=j, fn=fn, seed=seed, dim=dim, tag=tag, group=group):
                        curve, extra, wall, size = group.row(j)
                        return {"dim": dim, "fn": fn, "seed": seed, "strategy": tag,
                                "final_regret": float(curve[-1]), "curve": curve.tolist(),
                                "wall_s_batch": wall, "batch_tasks": size, **extra}
                    out.append((f"{dim}/{tag}/{fn}/{seed}", compute))
    return out


def summary_lines(rows, bbob_s, es_s) -> list[str]:
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    lines = [(f"config: {bbob_s.tag}; N={es_s.population_size}, G={es_s.num_generations}, "
              f"seeds={bbob_s.num_seeds}; cells: median over seeds of the best regret "
              f"f(x)-f_opt\n")]
    for dim in sorted({r["dim"] for r in rows}):
        lines.append(f"\n### {dim}-D\n\n| function | " + " | ".join(strategies) + " |")
        lines.append("|---|" + "---|" * len(strategies))
        at_dim = [r for r in rows if r["dim"] == dim]
        for fn in dict.fromkeys(r["fn"] for r in at_dim):
            cells_ = []
            for s in strategies:
                v = [r["final_regret"] for r in at_dim if r["fn"] == fn and r["strategy"] == s]
                cells_.append(f"{np.median(v):.3g}" if v else "-")
            lines.append(f"| {fn} | " + " | ".join(cells_) + " |")
        ranks = {s: [] for s in strategies}  # mean rank across strategies per (fn, seed) task
        for t in {(r["fn"], r["seed"]) for r in at_dim}:
            vals = {r["strategy"]: r["final_regret"] for r in at_dim if (r["fn"], r["seed"]) == t}
            order = sorted(vals, key=vals.get)
            for s in vals:
                ranks[s].append(order.index(s) + 1)
        lines.append("| mean rank | " + " | ".join(
            f"{np.mean(ranks[s]):.2f}" if ranks[s] else "-" for s in strategies) + " |")
        fallbacks = [r["evollm/fallback_coords"] for r in at_dim if "evollm/fallback_coords" in r]
        if fallbacks:
            lines.append(f"\nEvoLLM fallback coordinates (sum over runs and generations): "
                         f"{sum(fallbacks)}")
    return lines


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    config = cli.get_config()
    bbob_s, es_s, fns, dims, names = build(config)
    e = es_s.evollm
    lm = load_language_model(e.lm, e.lm_path, e.adapter_path) if EVOLLM in names else None
    run_config = {"bbob": dataclasses.asdict(bbob_s), "es": dataclasses.asdict(es_s)}
    wd = cli.open_workdir(f"es_bbob_{bbob_s.tag}", run_config, has_checkpoints=CellLog.has_cells)
    with wd:
        log = CellLog(wd)
        todo = cells(bbob_s, es_s, fns, dims, names, lm)
        pending = sum(log.get(c) is None for c, _ in todo)
        print(f"{len(todo)} cells ({len(dims)} dims x {len(todo) // len(dims)}), {pending} to "
              f"compute, {len(todo) - pending} already in {log.path}.", flush=True)
        if FLAGS.stop_after_cells is not None:
            todo = [(c, _killing(fn, FLAGS.stop_after_cells)) for c, fn in todo]
        rows = log.run(todo, progress=FLAGS.progress, desc="es_bbob cells")
        lines = summary_lines(rows, bbob_s, es_s)
        path = wd.file("summary.md")
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(path + ".tmp", path)
    print("\n".join(lines))
    print(f"Wrote {log.path} and {path}")


_computed = [0]


def _killing(fn, limit: int):
    """Wraps a cell so the process is SIGKILLed once `limit` new cells have been computed and
    the next one starts (the previous one is then on disk): a killed run, for tests."""
    def wrapped():
        if _computed[0] >= limit:
            os.kill(os.getpid(), signal.SIGKILL)
        _computed[0] += 1
        return fn()
    return wrapped


if __name__ == "__main__":
    cli.run(main)
