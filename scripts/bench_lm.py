"""SmolLM2-135M prefill and decode throughput of lfx.lm (CPU unless a GPU is visible).

  python scripts/bench_lm.py --batch_sizes=1,4,8 --prompt_len=256 --new_tokens=32 --reps=3

Prefill: one jitted forward of a [B, prompt_len] prompt into an empty KV cache (logits of the last
position only, as `generate` does). Decode: (time of `generate` with new_tokens) - (time with 1),
divided by new_tokens - 1 steps; eos is disabled (eos_id=-1) so every row decodes every step.
Constrained decode: the same with a one-state FSM that allows only the ten digit tokens (never
final, eos forbidden), so `generate` computes logits for those ids only, as EvoLLM's number
grammar does. Batch sizes are interleaved within each repetition; medians are reported. --dtypes
compares float32 with bfloat16 parameters (the compute dtype follows the parameters).
"""

import argparse
import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from lfx.lm import TokenFSM, cast_params, generate, load_smollm2
from lfx.lm.generate import _generate
from lfx.lm.llama import forward_hidden, init_cache, rms_norm


def _time(fn):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch_sizes", default="1,4,8")
    ap.add_argument("--prompt_len", type=int, default=256)
    ap.add_argument("--new_tokens", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dtypes", default="float32")
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    params32, config, tok = load_smollm2()
    trans = np.full((1, config.vocab_size), -1, np.int32)
    trans[0, [tok.token_to_id(str(d)) for d in range(10)]] = 0
    digits_fsm = TokenFSM(transitions=trans, start=0, final=np.zeros(1, bool))
    rng = np.random.default_rng(0)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    dtypes = args.dtypes.split(",")
    params = {d: cast_params(params32, getattr(jnp, d)) for d in dtypes}
    P, N = args.prompt_len, args.new_tokens

    @jax.jit
    def prefill(params, ids):
        cache = init_cache(config, ids.shape[0], P + N, params["embed"].dtype)
        h, cache = forward_hidden(params, config, ids, None, cache)
        x = rms_norm(h[:, -1], params["final_norm"], config.norm_eps)
        return x @ params["embed"].T, cache

    inputs = {b: jnp.asarray(rng.integers(17, config.vocab_size, (b, P)), jnp.int32)
              for b in sizes}
    lengths = {b: jnp.full((b,), P, jnp.int32) for b in sizes}

    def gen(d, b, n, fsm=None):
        return generate(params[d], config, inputs[b], lengths[b], key=jax.random.key(0),
                        max_new_tokens=n, eos_id=-1, pad_id=0, fsm=fsm)

    t0 = time.perf_counter()
    for d in dtypes:  # compile everything first
        for b in sizes:
            prefill(params[d], inputs[b])[0].block_until_ready()
            gen(d, b, 1)[0].block_until_ready()
            gen(d, b, N)[0].block_until_ready()
            gen(d, b, 1, digits_fsm)[0].block_until_ready()
            gen(d, b, N, digits_fsm)[0].block_until_ready()
    compile_s = time.perf_counter() - t0
    n_compiled = _generate._cache_size()
    times = {(d, b, k): [] for d in dtypes for b in sizes
             for k in ("prefill", "g1", "gN", "c1", "cN")}
    for _ in range(args.reps):
        for d in dtypes:
            for b in sizes:
                times[(d, b, "prefill")].append(_time(lambda d=d, b=b: prefill(params[d], inputs[b])))
                times[(d, b, "g1")].append(_time(lambda d=d, b=b: gen(d, b, 1)))
                times[(d, b, "gN")].append(_time(lambda d=d, b=b: gen(d, b, N)))
                times[(d, b, "c1")].append(_time(lambda d=d, b=b: gen(d, b, 1, digits_fsm)))
                times[(d, b, "cN")].append(_time(lambda d=d, b=b: gen(d, b, N, digits_fsm)))
    assert _generate._cache_size() == n_compiled, "generate recompiled on a repeated call"
    rows = []
    print(f"device: {jax.devices()[0].device_kind}, cores: {os.cpu_count()}, load average "
          f"{os.getloadavg()[0]:.1f}; compile+warmup {compile_s:.1f} s")
    print("| dtype | B | prefill s | prefill tok/s | decode ms/step | decode tok/s | "
          f"generate({N}) s | constrained decode ms/step | constrained generate({N}) s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for d in dtypes:
        for b in sizes:
            pre = statistics.median(times[(d, b, "prefill")])
            g1 = statistics.median(times[(d, b, "g1")])
            gn = statistics.median(times[(d, b, "gN")])
            step = max(gn - g1, 1e-9) / (N - 1)
            c1 = statistics.median(times[(d, b, "c1")])
            cn = statistics.median(times[(d, b, "cN")])
            cstep = max(cn - c1, 1e-9) / (N - 1)
            row = {"dtype": d, "batch": b, "prefill_s": pre, "prefill_tok_s": b * P / pre,
                   "decode_step_s": step, "decode_tok_s": b / step, "generate_s": gn,
                   "constrained_step_s": cstep, "constrained_generate_s": cn}
            rows.append(row)
            print(f"| {d} | {b} | {pre:.3f} | {b * P / pre:.0f} | {1e3 * step:.0f} | "
                  f"{b / step:.1f} | {gn:.2f} | {1e3 * cstep:.0f} | {cn:.2f} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "rows": rows, "compile_s": compile_s,
                       "load_average": os.getloadavg()[0]}, f, indent=1)


if __name__ == "__main__":
    main()
