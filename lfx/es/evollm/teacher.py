"""Teacher trajectories as EvoLLM-format text, for training / fine-tuning the proposal LM.

The paper's fine-tuning result (Lange et al. 2024, arXiv:2402.18381, Sec. "instruction fine-tuning
on teacher trajectories"): run a teacher ES (e.g. SNES or CMA-ES) on sampled BBOB tasks, and train
the LM to answer EvoLLM's own prompt with the teacher's next mean. lfx builds the examples with
EvoLLM's own archive/context code, so the text is exactly what EvoLLM will show at test time:

  example_g,b = prompt(context_g, block b) + format(discretise(m^teacher_{g+1}[block b])) + ":"

`rollout` is one `lax.scan` (jit/vmap it over tasks and seeds); `to_texts` is the host half.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lfx.es.evollm import encoding, prompt


def make_rollout(evollm, strategy, fitness_fn, num_generations: int):
    """`rollout(key, mean [D], params, task) -> (x_int [G, nb, L, k], f_int [G, L], valid [G, L],
    target_int [G, nb, k])` where the context comes from the teacher's populations and target is
    the teacher's mean after each tell."""

    def rollout(key, mean, params, task):
        key_init, key_run = jax.random.split(key)
        state = strategy.init(key_init, mean, params)
        ctx_state = evollm.init(key_init, mean, evollm.default_params)

        def gen(carry, key_g):
            state, ctx_state = carry
            k_ask, k_eval, k_tell, k_ctx = jax.random.split(key_g, 4)
            population, state = strategy.ask(k_ask, state, params)
            out = fitness_fn(k_eval, population, task)
            fitness = out[0] if isinstance(out, tuple) else out
            state, _ = strategy.tell(k_tell, population, fitness, state, params)
            ctx_state = evollm.update_archive(ctx_state, population, fitness)
            x_int, f_int, valid = evollm.context(k_ctx, ctx_state)
            c = evollm.config
            target = encoding.discretise_x(strategy.mean(state), c.x_decimals, c.x_bound)
            return (state, ctx_state), (x_int, f_int, valid, target[evollm.block_index])

        _, out = jax.lax.scan(gen, (state, ctx_state), jax.random.split(key_run, num_generations))
        return out

    return rollout


def to_texts(evollm, x_int, f_int, valid, target_int) -> list[str]:
    """Host: arrays with any leading batch dims ([..., nb, L, k] etc.) -> one text per (example, block)."""
    x_int, f_int, valid, target_int = map(np.asarray, (x_int, f_int, valid, target_int))
    nb, L, k = x_int.shape[-3:]
    x_int = x_int.reshape(-1, nb, L, k)
    f_int, valid = f_int.reshape(-1, L), valid.reshape(-1, L).astype(bool)
    target_int = target_int.reshape(-1, nb, k)
    texts = []
    for i in range(x_int.shape[0]):
        for b in range(nb):
            head = prompt.block_prompt(x_int[i, b][valid[i]], f_int[i][valid[i]], evollm.config.header)
            texts.append(head + encoding.format_numbers(target_int[i, b]) + ":")
    return texts


def tokenize_batches(tokenizer, texts: list[str], batch_size: int, length: int, key: jax.Array):
    """Texts -> int32 [num_batches, batch_size, length] right-padded (shuffled, ragged tail dropped)."""
    ids = np.full((len(texts), length), tokenizer.pad_id, np.int32)
    for i, t in enumerate(texts):
        tok = tokenizer.encode(t)[-length:]  # keep the end: the target must survive truncation
        ids[i, : len(tok)] = tok
    perm = np.asarray(jax.random.permutation(key, len(texts)))
    n = (len(texts) // batch_size) * batch_size
    return jnp.asarray(ids[perm[:n]].reshape(-1, batch_size, length))
