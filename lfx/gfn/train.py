"""GFlowNet training recipe: `make_train(config) -> GFNRecipe` (`init`, `run`, `train`), one `lax.scan`.

Each iteration samples `batch_size` trajectories on-policy (with epsilon-uniform / temperature
exploration) and takes the gradient of the chosen loss: either straight through a padded rollout
(one network pass per visited state, see `lfx.gfn.rollout`) or, for trajectory balance and its
log-partition-variance form, from a packed batch of the transitions actually taken
(`lfx.gfn.packed`; chosen automatically, see `resolve_rollout`). It optionally adds a replayed
batch sampled backwards from a buffer of terminal objects, and takes one Adam step (separate
learning rate for log Z).

Static `GFNConfig` fixes shapes and code paths; traced `GFNHParams` holds the floats, so a sweep is
`jax.vmap(recipe.train, in_axes=(None, 0))(key, hparams_batch)`. The state carries the run key and
the iteration counter (iteration i uses `lfx.gfn.recipe.iteration_key(key, i)`), so `init` then
`run` in chunks of any size gives exactly `train`'s result (what `lfx.experiment.run_chunked`
relies on for checkpoints and exact resume).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from lfx.gfn import losses
from lfx.gfn.bitseq import make_bitseq
from lfx.gfn.hypergrid import make_hypergrid
from lfx.gfn.ising import make_ising
from lfx.gfn.metrics import DAG, build_dag, exact_metrics, modes_found
from lfx.gfn.networks import make_policy
from lfx.gfn.packed import PACKED_LOSSES, packed_grads, sample_packed
from lfx.gfn.recipe import NON_NEGATIVE, POSITIVE, UNIT, check_hparams, iteration_key
from lfx.gfn.replay import ReplayState, replay_add, replay_init, replay_sample
from lfx.gfn.rollout import backward_rollout, forward_rollout, parent_edge_log_flows

GFN_ENVS = {"hypergrid": make_hypergrid, "bitseq": make_bitseq, "ising": make_ising}


@dataclasses.dataclass(frozen=True)
class GFNConfig:
    """Static settings.

    env: a key of `GFN_ENVS`; env_kwargs: its keyword arguments as a tuple of (name, value) pairs.
    loss: a key of `lfx.gfn.losses.LOSSES`. eval_every: exact TV/JSD/logZ every N iterations
    (0: never; needs an enumerable environment). replay_batch: trajectories replayed per iteration
    (0: no replay).
    rollout: "padded" (`forward_rollout`, a scan over max_steps differentiated end to end),
    "packed" (`lfx.gfn.packed`: sample without autodiff, then differentiate only the transitions
    taken; losses "tb" and "logz_var" only, no replay or skip options) or "auto" (the default:
    "packed" where it applies, else "padded"; see `resolve_rollout`). pool_size: lanes of the
    packed sampler; pack_chunk: rows per gradient chunk of the packed path (0 for either:
    automatic, see `packed_sizes`).
    """

    env: str = "hypergrid"
    env_kwargs: tuple = (("dim", 2), ("height", 8))
    loss: str = "tb"
    batch_size: int = 16
    num_iterations: int = 1000
    hidden: tuple = (256, 256)
    learned_pb: bool = False
    replay_capacity: int = 1000
    replay_batch: int = 0
    eval_every: int = 0
    skip_done: bool = False
    skip_chunk: int = 0
    rollout: str = "auto"
    pool_size: int = 0
    pack_chunk: int = 0


@struct.dataclass
class GFNHParams:
    """Traced floats (vmappable).

    lr: Adam step of the network; logz_lr: Adam step of log Z; epsilon: probability of a uniform
    action (exploration); temperature: of the sampling softmax; subtb_lambda: SubTB's weight decay.
    """

    lr: float = 1e-3
    logz_lr: float = 0.1
    epsilon: float = 0.0
    temperature: float = 1.0
    subtb_lambda: float = 0.9

    def validate(self) -> None:
        """Raises ValueError, naming the field to change, for values that cannot train."""
        check_hparams(self, {"lr": POSITIVE, "logz_lr": POSITIVE, "epsilon": UNIT,
                             "temperature": POSITIVE, "subtb_lambda": NON_NEGATIVE})


@struct.dataclass
class GFNTrainState:
    """params {"net", "log_z"}; key: the run key (iteration i uses `iteration_key(key, i)`);
    step: iterations done."""

    params: Any
    opt_state: Any
    replay: ReplayState
    modes: jax.Array
    step: jax.Array
    key: jax.Array


class GFNRecipe(NamedTuple):
    """A GFlowNet run: `train(key, hp) = run(init(key, hp), hp, num_updates=num_updates)`.

    init(key, hp) -> GFNTrainState; run(state, hp, *, num_updates) -> (state, metrics
    [num_updates]); num_updates = config.num_iterations. `apply(net_params, obs)` is the policy
    network; `dag` the enumerated DAG of the exact evaluation (None when eval_every = 0).
    """

    config: GFNConfig
    num_updates: int
    env: Any
    env_params: Any
    apply: Callable
    dag: DAG | None
    init: Callable[..., GFNTrainState]
    run: Callable[..., tuple[GFNTrainState, dict[str, jax.Array]]]
    train: Callable[..., tuple[GFNTrainState, dict[str, jax.Array]]]


def validate(config: GFNConfig) -> None:
    if config.env not in GFN_ENVS:
        raise ValueError(f"Unknown GFlowNet env {config.env!r}; choose one of {sorted(GFN_ENVS)}.")
    if config.loss not in losses.LOSSES:
        raise ValueError(f"Unknown loss {config.loss!r}; choose one of {sorted(losses.LOSSES)}.")
    if config.loss == "fm" and (config.learned_pb or config.replay_batch):
        raise ValueError("Flow matching has no PB and no replay here: set learned_pb=False, replay_batch=0.")
    if config.batch_size < 1 or config.num_iterations < 1:
        raise ValueError("batch_size and num_iterations must be >= 1.")
    if config.replay_batch and config.replay_capacity < config.batch_size:
        raise ValueError("replay_capacity must be >= batch_size when replay_batch > 0.")
    if config.rollout not in ("auto", "padded", "packed"):
        raise ValueError(f"Unknown rollout {config.rollout!r}; choose 'auto', 'padded' or 'packed'.")
    if config.rollout == "packed":
        if config.loss not in PACKED_LOSSES:
            raise ValueError(
                f"rollout='packed' needs a loss that depends only on per-trajectory sums of log PF / "
                f"log PB {PACKED_LOSSES}; got loss={config.loss!r}. Use rollout='padded' for it."
            )
        if config.replay_batch or config.skip_done or config.skip_chunk:
            raise ValueError("rollout='packed' has no replay and no skip options: set replay_batch=0, "
                             "skip_done=False, skip_chunk=0 (or use rollout='padded').")
    bad_sizes = not 0 <= config.pool_size <= config.batch_size or config.pack_chunk < 0
    if resolve_rollout(config) == "packed" and bad_sizes:
        raise ValueError(f"rollout='packed' needs 0 <= pool_size <= batch_size={config.batch_size} "
                         f"and pack_chunk >= 0; got pool_size={config.pool_size}, "
                         f"pack_chunk={config.pack_chunk}.")


def resolve_rollout(config: GFNConfig) -> str:
    """The rollout a config runs: "packed" or "padded".

    "auto" picks "packed" when the loss depends on a trajectory only through its sums of log PF and
    log PB ("tb", "logz_var") and no replay or skip option is set, else "padded". On CPU the packed
    path was faster than the padded one at every hypergrid setting measured (1.3-2.3x, batch 16 and
    512, 2x8 and 4x16), and on an H200 at the one setting measured (4x16, batch 16: 1.8x); see
    docs/benchmarks/gfn.md. With batch <= 32 its automatic pool has one lane per trajectory, so a
    seed draws the same trajectories under either rollout and the gradients agree to float32
    rounding (tests/gfn/test_gfn_packed.py).
    """
    if config.rollout != "auto":
        return config.rollout
    packable = config.loss in PACKED_LOSSES and not (
        config.replay_batch or config.skip_done or config.skip_chunk)
    return "packed" if packable else "padded"


def packed_sizes(config: GFNConfig) -> tuple[int, int]:
    """(pool lanes W, gradient chunk rows) of the packed path; 0 in the config means automatic.

    Automatic: W = min(B, max(32, B // 4)), chunk = min(1024, max(64, 4 B)). Measured at hypergrid
    4x16 (single XLA thread): at B = 512 pools of 32-128 lanes were ~1.4x faster than W = B (the
    refill pool avoids running lanes whose trajectory has exited); at B = 16 a smaller pool or a
    larger chunk did not pay (docs/benchmarks/gfn.md).
    """
    B = config.batch_size
    return config.pool_size or min(B, max(32, B // 4)), config.pack_chunk or min(1024, max(64, 4 * B))


def make_env(config: GFNConfig):
    return GFN_ENVS[config.env](**dict(config.env_kwargs))


def make_optimizer(hp: GFNHParams) -> optax.GradientTransformation:
    """Adam on the network (`hp.lr`) and on log Z (`hp.logz_lr`), learning rates traced."""
    sub = lambda lr: optax.inject_hyperparams(optax.adam)(learning_rate=lr)
    labels = lambda p: {"net": jax.tree.map(lambda _: "net", p["net"]), "log_z": "log_z"}
    return optax.multi_transform({"net": sub(hp.lr), "log_z": sub(hp.logz_lr)}, labels)


def _traj_loss(config, hp, env, log_z, tr, params, apply, env_params):
    """Loss of the configured kind on one batch of trajectories; returns (loss, logz_estimate)."""
    name = config.loss
    if name == "tb":
        loss, _ = losses.trajectory_balance(log_z, tr.log_pf, tr.log_pb, tr.log_reward, tr.valid)
        return loss, log_z
    if name == "logz_var":
        loss, m = losses.log_partition_variance(tr.log_pf, tr.log_pb, tr.log_reward, tr.valid)
        return loss, m["logz"]
    if name == "db":
        loss, _ = losses.detailed_balance(tr.log_flow, tr.log_pf, tr.log_pb, tr.log_r, tr.valid, tr.is_exit)
        return loss, tr.log_flow[0, 0]
    if name == "subtb":
        loss, _ = losses.subtrajectory_balance(
            tr.log_flow, tr.log_pf, tr.log_pb, tr.log_r, tr.valid, tr.is_exit, lam=hp.subtb_lambda
        )
        return loss, tr.log_flow[0, 0]
    lin, inm = parent_edge_log_flows(params, env, env_params, apply, tr.obj)
    loss, _ = losses.flow_matching(lin, inm, tr.fwd_logits, tr.fwd_mask, tr.valid)
    return loss, jax.nn.logsumexp(jnp.where(tr.fwd_mask[0, 0], tr.fwd_logits[0, 0], -jnp.inf))


def make_train(config: GFNConfig, env=None, env_params=None) -> GFNRecipe:
    """Builds the `GFNRecipe`; `train(key, hparams) -> (GFNTrainState, metrics [num_iterations])`.

    `env`/`env_params` override `config.env` (any `GFNEnv`). Invalid configs raise ValueError here,
    before anything is compiled. Nothing is jitted here: the caller jits (and vmaps).
    """
    validate(config)
    rollout = resolve_rollout(config)
    if env is None:
        env, env_params = make_env(config)
    fm = config.loss == "fm"
    init_net, apply = make_policy(
        env.obs_size, env.num_actions, env.num_backward_actions, hidden=config.hidden,
        learned_pb=config.learned_pb, with_flow=config.loss in ("db", "subtb"),
    )
    dag = build_dag(env, env_params) if config.eval_every else None
    try:
        num_modes = int(env.mode_hits(env.initial_obj()[None], env_params).shape[-1])
    except NotImplementedError:
        num_modes = 0

    def init(key: jax.Array, hp: GFNHParams) -> GFNTrainState:
        k_init, k_run = jax.random.split(key)
        params = {"net": init_net(k_init), "log_z": jnp.zeros((), jnp.float32)}
        return GFNTrainState(
            params=params, opt_state=make_optimizer(hp).init(params),
            replay=replay_init(config.replay_capacity if config.replay_batch else 1, env.obj_size),
            # one dummy slot when the env has no modes: orbax cannot save zero-size arrays
            modes=jnp.zeros((max(num_modes, 1),), bool), step=jnp.zeros((), jnp.int32), key=k_run,
        )

    def run(state: GFNTrainState, hp: GFNHParams, *, num_updates: int):
        tx = make_optimizer(hp)

        def loss_fn(params, k, replay):
            k_roll, k_rep, k_bwd = jax.random.split(k, 3)
            tr = forward_rollout(
                k_roll, params["net"], env, env_params, apply, config.batch_size,
                epsilon=hp.epsilon, temperature=hp.temperature, learned_pb=config.learned_pb,
                exit_logit_from_reward=fm, keep_logits=fm, skip_done=config.skip_done,
                skip_chunk=config.skip_chunk,
            )
            loss, logz = _traj_loss(config, hp, env, params["log_z"], tr, params["net"], apply, env_params)
            if config.replay_batch:
                obj, _ = replay_sample(k_rep, replay, config.replay_batch)
                rtr = backward_rollout(
                    k_bwd, params["net"], env, env_params, apply, obj, learned_pb=config.learned_pb
                )
                rloss, _ = _traj_loss(config, hp, env, params["log_z"], rtr, params["net"], apply, env_params)
                loss = jnp.where(replay.size > 0, 0.5 * (loss + rloss), loss)
            return loss, (tr, logz)

        def packed_loss_and_grad(params, k):
            k_roll = jax.random.split(k, 3)[0]  # the padded path's rollout key
            pool, chunk = packed_sizes(config)
            tr = sample_packed(
                k_roll, params["net"], env, env_params, apply, config.batch_size,
                pool_size=pool, chunk=chunk, epsilon=hp.epsilon,
                temperature=hp.temperature, learned_pb=config.learned_pb,
            )
            loss, g_net, g_logz, logz = packed_grads(
                params["net"], params["log_z"], tr, env, env_params, apply, loss=config.loss,
                chunk=chunk, learned_pb=config.learned_pb,
            )
            return (loss, (tr, logz)), {"net": g_net, "log_z": g_logz}

        def iteration(state: GFNTrainState, _):
            k = iteration_key(state.key, state.step)
            if rollout == "packed":
                (loss, (tr, logz)), grads = packed_loss_and_grad(state.params, k)
            else:
                (loss, (tr, logz)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                    state.params, k, state.replay
                )
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            replay = state.replay
            if config.replay_batch:
                replay = replay_add(replay, tr.terminal_obj, tr.log_reward)
            modes = state.modes
            if num_modes:
                modes = modes_found(modes, env.mode_hits(tr.terminal_obj, env_params))
            metrics = {
                "train/loss": loss,
                "train/logz": logz,
                "train/log_reward": tr.log_reward.mean(),
                "train/length": tr.length.mean(),
                "train/modes_found": modes.sum(),
            }
            if dag is not None:
                def ev(_):
                    return exact_metrics(dag, params["net"], apply, logz, exit_logit_from_reward=fm)

                def no_ev(_):
                    return {k_: jnp.float32(jnp.nan) for k_ in ("eval/tv", "eval/jsd", "eval/logz_err")}

                last = state.step == config.num_iterations - 1
                do = (state.step % config.eval_every == 0) | last
                metrics.update(jax.lax.cond(do, ev, no_ev, None))
            new = GFNTrainState(params, opt_state, replay, modes, state.step + 1, state.key)
            return new, metrics

        return jax.lax.scan(iteration, state, None, length=num_updates)

    def train(key: jax.Array, hp: GFNHParams):
        return run(init(key, hp), hp, num_updates=config.num_iterations)

    return GFNRecipe(config=config, num_updates=config.num_iterations, env=env,
                     env_params=env_params, apply=apply, dag=dag, init=init, run=run, train=train)
