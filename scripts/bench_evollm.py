"""Wall time of one EvoLLM generation at 10 dimensions on CPU (goal: <= 2 s on 2 cores).

    python scripts/bench_evollm.py                       # SmolLM2-135M-Instruct, several prompt shapes
    python scripts/bench_evollm.py --lm=teacher          # the small char-level Llama

One generation = jitted ask + BBOB sphere evaluation + jitted tell, whose host callback formats the
prompts, runs ONE batched constrained `generate` over all blocks and parses the proposals. After a
warm-up generation (compilation), `--reps` generations are timed; the median is reported with the
LM call's own share (time inside `generate` + decode) and the process CPU seconds per generation
(all threads; on an idle machine wall time is about CPU seconds / cores in use). The machine is
shared and noisy: rerun and compare medians, not single numbers.
"""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from lfx.es import bbob
from lfx.es.evollm import EvoLLM, EvoLLMConfig
from lfx.es.evollm.models import load_language_model

_LM = flags.DEFINE_string("lm", "smollm2", "smollm2 | teacher | untrained | toy")
_LM_PATH = flags.DEFINE_string("lm_path", "runs/evollm_teacher/teacher_lm.npz",
                               "teacher LM (.npz + .json from experiments/evollm_teacher.py)")
_DIMS = flags.DEFINE_integer("dims", 10, "problem dimension")
_SHAPES = flags.DEFINE_string(
    "shapes", "5:2:2,5:5:2,5:10:2,3:10:1", "context_length:block_size:x_decimals, comma-separated"
)
_REPS = flags.DEFINE_integer("reps", 5, "timed generations per shape")
_OUT = flags.DEFINE_string("out", "runs/bench_evollm.jsonl", "JSONL results")


def main(_):
    lm = load_language_model(_LM.value, _LM_PATH.value if _LM.value in ("teacher", "untrained")
                             else "")
    d = _DIMS.value
    fitness = jax.jit(bbob.make_fitness(("sphere",), d))
    task = bbob.make_task("sphere", d, 0)
    os.makedirs(os.path.dirname(_OUT.value) or ".", exist_ok=True)
    for shape in _SHAPES.value.split(","):
        L, k, dec = (int(v) for v in shape.split(":"))
        ev = EvoLLM(EvoLLMConfig(population_size=8, num_dims=d, block_size=k, context_length=L,
                                 x_decimals=dec), lm)
        inner = ev.propose_texts
        lm_time = []

        def timed(texts, seed, inner=inner, lm_time=lm_time):
            t = time.perf_counter()
            out = inner(texts, seed)
            lm_time.append(time.perf_counter() - t)
            return out

        ev.propose_texts = timed
        ask, tell = jax.jit(ev.ask), jax.jit(ev.tell)
        params = ev.default_params
        state = ev.init(jax.random.key(0), jnp.zeros(d), params)
        walls, cpus = [], []
        for g in range(_REPS.value + 1):
            t, c = time.perf_counter(), time.process_time()
            pop, state = ask(jax.random.key(g), state, params)
            fit, _ = fitness(jax.random.key(g), pop, task)
            state, m = tell(jax.random.key(100 + g), pop, fit, state, params)
            jax.block_until_ready(state.mean)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        row = {"lm": _LM.value, "dims": d, "context_length": L, "block_size": k, "x_decimals": dec,
               "num_blocks": ev.num_blocks, "first_gen_s": walls[0],
               "median_gen_s": float(np.median(walls[1:])), "median_lm_s": float(np.median(lm_time[1:])),
               "median_cpu_s": float(np.median(cpus[1:])), "load_avg_1m": os.getloadavg()[0],
               "reps": _REPS.value, "cpu_count": os.cpu_count()}
        print(json.dumps(row), flush=True)
        with open(_OUT.value, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    app.run(main)
