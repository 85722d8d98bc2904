"""Shared helpers of the lfx.offline algorithm tests (BC, TD3+BC, ReBRAC, IQL): tiny problems and the
checks every algorithm must pass (vmapped seeds == a loop). Compiled functions are cached per module so
each algorithm's `init`/`update` compiles once per test session.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from lfx.offline.types import AgentConfig, Batch, Spec

SPEC = Spec(obs_dim=3, action_dim=2)
CONFIG = AgentConfig(hidden_sizes=(16, 16))
BATCH_SIZE = 32


def make_batch(key: jax.Array, spec: Spec = SPEC, batch_size: int = BATCH_SIZE, done_every: int = 3) -> Batch:
    """A random batch: Gaussian states, actions in (-1, 1), some dones (every `done_every`-th)."""
    ks = jax.random.split(key, 5)
    obs = jax.random.normal(ks[0], (batch_size, spec.obs_dim))
    next_obs = jax.random.normal(ks[1], (batch_size, spec.obs_dim))
    if spec.discrete:
        actions = jax.random.randint(ks[2], (batch_size,), 0, spec.num_actions)
        next_actions = jax.random.randint(ks[3], (batch_size,), 0, spec.num_actions)
    else:
        actions = jnp.tanh(jax.random.normal(ks[2], (batch_size, spec.action_dim)))
        next_actions = jnp.tanh(jax.random.normal(ks[3], (batch_size, spec.action_dim)))
    rewards = jax.random.normal(ks[4], (batch_size,))
    dones = (jnp.arange(batch_size) % done_every == done_every - 1).astype(jnp.float32)
    return Batch(obs, actions, rewards, next_obs, next_actions, dones)


def small_batch(key: jax.Array, b: int = 6) -> Batch:
    """A batch of `b` rows for SPEC's shapes: actions uniform in (-0.9, 0.9), about 30 % dones (CQL, SAC-N)."""
    k = jax.random.split(key, 5)
    return Batch(observations=jax.random.normal(k[0], (b, 3)),
                 actions=jax.random.uniform(k[1], (b, 2), minval=-0.9, maxval=0.9),
                 rewards=jax.random.normal(k[2], (b,)), next_observations=jax.random.normal(k[3], (b, 3)),
                 next_actions=jnp.zeros((b, 2)), dones=(jax.random.uniform(k[4], (b,)) < 0.3).astype(jnp.float32))


def _take(x, i):
    return x[i]


@functools.cache
def jit_init(module):
    return jax.jit(module.init, static_argnums=(1, 2))


@functools.cache
def jit_update(module):
    return jax.jit(module.update, static_argnums=(3, 4))


@functools.cache
def jit_vmap_update(module):
    """update vmapped over (agent, key, hparams): seeds and a sweep as one batch axis, the minibatch shared."""
    return jax.jit(jax.vmap(module.update, in_axes=(0, None, 0, None, None, 0)), static_argnums=(3, 4))


def assert_vmap_equals_loop(module, hparams, other_hparams, num_updates=2, spec=SPEC, config=CONFIG):
    """`num_updates` updates vmapped over 2 runs (agents, keys and HParams: run 0 has `hparams`, run 1
    `other_hparams`) equal the same updates run by run.

    The agents are initialised run by run (the compiled single `init`) and stacked, so only `update`
    is compiled a second time.
    """
    batch = make_batch(jax.random.key(7), spec)
    seeds = jax.random.split(jax.random.key(3), 2)
    runs = (hparams, other_hparams)
    singles = [jit_init(module)(k, spec, config, hp) for k, hp in zip(seeds, runs, strict=True)]
    batched = jax.tree.map(lambda *x: jnp.stack(x), *singles)
    hparams_batch = jax.tree.map(lambda *x: jnp.stack([jnp.asarray(v, jnp.float32) for v in x]), *runs)
    for step in range(num_updates):
        keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(seeds, step)
        batched, metrics = jit_vmap_update(module)(batched, batch, keys, spec, config, hparams_batch)
        singles = [jit_update(module)(agent, batch, keys[i], spec, config, runs[i]) for i, agent in enumerate(singles)]
        for i, single in enumerate(singles):
            leaves_b = jax.tree.leaves(jax.tree.map(functools.partial(_take, i=i), (batched, metrics)))
            leaves_s = jax.tree.leaves(single)
            assert len(leaves_b) == len(leaves_s)
            for a, b in zip(leaves_b, leaves_s, strict=True):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6)
        singles = [agent for agent, _ in singles]
    # The two runs really differ (the check would be empty otherwise).
    first = jax.tree.leaves(batched.actor_params)[0]
    assert not np.allclose(np.asarray(first[0]), np.asarray(first[1]))


def tree_max_abs_diff(a, b) -> float:
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def bandit_dataset(key: jax.Array, size: int = 512, spec: Spec = SPEC) -> Batch:
    """A one-step contextual bandit: each state appears with a good action (+0.5, ..., +0.5) (reward 1)
    and a bad one (-0.5, ..., -0.5) (reward 0), every transition terminal. BC averages the two (mean
    action ~ 0); an offline RL method that uses the rewards should prefer the good one (mean > 0).
    """
    obs = jax.random.normal(key, (size, spec.obs_dim))
    good = jnp.arange(size) % 2 == 0
    actions = jnp.broadcast_to(jnp.where(good, 0.5, -0.5)[:, None], (size, spec.action_dim))
    return Batch(observations=obs, actions=actions, rewards=good.astype(jnp.float32), next_observations=obs,
                 next_actions=actions, dones=jnp.ones(size))


def train_on_dataset(module, key, data: Batch, hparams, *, num_updates: int, spec=SPEC, config=CONFIG):
    """The recipe's loop in miniature: uniform minibatches of BATCH_SIZE from `data` and `update`, as a
    Python loop over the compiled single `update` (no new compilation). Returns (agent, last metrics).
    """
    size = data.observations.shape[0]
    k_init, k_idx, k_run = jax.random.split(key, 3)
    idx = np.asarray(jax.random.randint(k_idx, (num_updates, BATCH_SIZE), 0, size))
    host = jax.tree.map(np.asarray, data)
    agent = jit_init(module)(k_init, spec, config, hparams)
    keys = jax.random.split(k_run, num_updates)
    for i in range(num_updates):
        batch = jax.tree.map(functools.partial(_take, i=idx[i]), host)
        agent, metrics = jit_update(module)(agent, batch, keys[i], spec, config, hparams)
    return agent, metrics
