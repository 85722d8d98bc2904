"""Teacher trajectories as EvoLLM-format text, for training / fine-tuning the proposal LM.

The paper's fine-tuning result (Lange et al. 2024, arXiv:2402.18381, Sec. "instruction fine-tuning
on teacher trajectories"): run a teacher ES (e.g. SNES or CMA-ES) on sampled BBOB tasks, and train
the LM to answer EvoLLM's own prompt with the teacher's next mean. lfx builds the examples with
EvoLLM's own archive/context code, so the text is exactly what EvoLLM will show at test time:

  example_g,b = prompt(context_g, block b) + format(discretise(m^teacher_{g+1}[block b])) + ":"

`rollout` is one `lax.scan` (jit/vmap it over tasks and seeds); `to_texts` is the host half.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from lfx.es.evollm import encoding, prompt

TRAIN_FNS = ("sphere,ellipsoidal,rastrigin,bueche_rastrigin,attractive_sector,step_ellipsoidal,"
             "rosenbrock,discus,bent_cigar,sharp_ridge,different_powers,schaffers_f7")


@dataclasses.dataclass(frozen=True)
class TeacherConfig:
    """Teacher data (experiments/evollm_teacher.py) and the small LM trained on it.

    Data: `teachers` (strategy names) run on `tasks_per_dim` freshly sampled BBOB tasks over
    `train_fns` ("all" = the 24) per dim of `dims`, from U[-init_mean_scale, init_mean_scale]^D;
    the prompt settings must match the es_bbob evollm block. LM: `lfx.lm.tiny_config` sizes;
    training on `seq_len`-character rows, `batch_size` per step, `num_steps` Adam steps.
    """

    teachers: str = "snes,cma_es"
    # 12 BBOB functions (the 8 test functions + 4 others; all 24 compile too slowly on this CPU);
    # tasks are freshly sampled (x_opt, f_opt, rotations), not the evaluation tasks.
    train_fns: str = TRAIN_FNS
    dims: str = "2,4"  # queried in blocks of 2, like EvoLLM at test time
    tasks_per_dim: int = 64
    population_size: int = 8
    num_generations: int = 25
    init_mean_scale: float = 3.0  # teacher runs start at U[-3, 3]^D so contexts cover the box
    block_size: int = 2
    context_length: int = 5
    x_decimals: int = 2
    fitness_digits: int = 3
    texts_path: str = ""  # reuse this teacher_texts.json instead of running the teachers
    dim: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    hidden_dim: int = 128
    seq_len: int = 96
    batch_size: int = 16
    num_steps: int = 2000


def make_texts(config: TeacherConfig, tokenizer, fns: tuple[str, ...], seed: int) -> list[str]:
    """Host: runs every teacher on sampled tasks of every dim -> EvoLLM-format training texts."""
    from lfx.es import bbob, make_strategy  # noqa: PLC0415
    from lfx.es.evollm.strategy import EvoLLM, EvoLLMConfig, lfx_lm  # noqa: PLC0415

    texts = []
    for dim in [int(d) for d in config.dims.split(",")]:
        ev = EvoLLM(
            EvoLLMConfig(
                population_size=config.population_size, num_dims=dim,
                block_size=config.block_size, context_length=config.context_length,
                x_decimals=config.x_decimals, fitness_digits=config.fitness_digits,
            ),
            lfx_lm(None, None, tokenizer),  # only the grammar is needed from the LM here
        )
        fitness = bbob.make_fitness(fns, dim)
        for t_i, name in enumerate(config.teachers.split(",")):
            strategy = make_strategy(name, population_size=config.population_size, num_dims=dim)
            rollout = make_rollout(ev, strategy, fitness, config.num_generations)
            key = jax.random.key(seed * 7919 + dim * 31 + t_i)
            k_task, k_mean, k_run = jax.random.split(key, 3)
            n = config.tasks_per_dim
            tasks = jax.vmap(lambda k, dim=dim: bbob.sample_task(k, fns, dim))(
                jax.random.split(k_task, n))
            means = jax.random.uniform(k_mean, (n, dim), minval=-config.init_mean_scale,
                                       maxval=config.init_mean_scale)
            out = jax.jit(jax.vmap(rollout, in_axes=(0, 0, None, 0)))(
                jax.random.split(k_run, n), means, strategy.default_params, tasks)
            texts += to_texts(ev, *out)
    return texts


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
